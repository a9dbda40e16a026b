"""Sphinx configuration of the sketchcore documentation.

Build (after installing the package with its ``docs`` extra)::

    pip install '.[docs]'
    sphinx-build -W -b html docs docs/_build/html

The API pages import the installed package (its Rust extension included);
the gallery (``docs/examples/plot_*.py``) runs each script and keeps its
figures.
"""

from __future__ import annotations

import os
import warnings

import sketchcore

project = "sketchcore"
author = "the sketchcore developers"
copyright = "the sketchcore developers"
release = sketchcore.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build", "Thumbs.db", ".DS_Store", "examples/README.txt", "api/generated/cli.rst",
    "generated",
]
suppress_warnings = ["config.cache"]
default_role = "code"

# -- API reference -------------------------------------------------------------

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Documents only what sketchcore defines: members inherited from
    scikit-learn's base classes (get_params, set_output ...) are described in
    scikit-learn's documentation."""
    target = getattr(obj, "fget", obj)
    module = getattr(target, "__module__", None)
    if what in ("class", "exception") and not (module or "").startswith("sketchcore"):
        return True
    return None


# -- HTML ------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sketchcore {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False

# -- gallery -----------------------------------------------------------------------

os.environ.setdefault("MPLBACKEND", "agg")
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg", category=UserWarning)

sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "sphinx_gallery.sorting.FileNameSortKey",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "plot_gallery": "True",
}


# -- command-line reference: the parsers' own help, written at build time --------


def _write_cli_help() -> None:
    """Writes ``api/generated/cli.rst``: every subcommand's ``--help``."""
    import argparse
    import pathlib

    from sketchcore.cli.main import build_parser

    os.environ["COLUMNS"] = "88"
    parser = build_parser()
    parts = ["sketchcore", "==========", "", ".. code-block:: none", ""]
    parts += ["   " + line if line else "" for line in parser.format_help().splitlines()]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                title = f"sketchcore {name}"
                parts += ["", "", title, "=" * len(title), "", ".. code-block:: none", ""]
                parts += ["   " + line if line else "" for line in sub.format_help().splitlines()]
    text = "\n".join(parts) + "\n"
    out = pathlib.Path(__file__).parent / "api" / "generated" / "cli.rst"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


_write_cli_help()


# -- the headline performance table: README.md's block, written by ---------------
# -- asv_benchmarks/make_report.py, converted to reStructuredText -----------------


def _inline_md(text: str) -> str:
    import re

    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


def _write_perf_table() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- perf-table:start -->(.*?)<!-- perf-table:end -->", readme, flags=re.S)
    lines = found.group(1).strip().splitlines() if found else ["(no table in README.md)"]
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if rows:
            out.extend(["", ".. list-table::", "   :header-rows: 1", ""])
            for row in rows:
                out.append("   * - " + _inline_md(row[0]))
                out.extend("     - " + _inline_md(cell) for cell in row[1:])
            out.append("")
            rows.clear()

    for line in lines:
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
            continue
        flush()
        if line and not line.startswith("!["):
            out.extend(["", _inline_md(line)])
    flush()
    target = pathlib.Path(__file__).parent / "generated" / "perf_table.rst"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(out).strip() + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


_write_perf_table()


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
