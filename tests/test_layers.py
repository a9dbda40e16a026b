"""The package's layers: its import graph (built with ``ast``) has no cycle and
no module imports a module of a higher layer. Imports under
``if TYPE_CHECKING:`` are not followed (they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sketchcore

ROOT = Path(sketchcore.__file__).resolve().parent

#: Lowest first; a module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("sketchcore.core", "sketchcore.exceptions", "sketchcore.datasets")),
    ("backends", ("sketchcore.backends", "sketchcore._core")),
    ("files and privacy", ("sketchcore.io",)),
    ("learning", ("sketchcore.learning",)),
    ("audio", ("sketchcore.audio",)),
    ("command line", ("sketchcore.cli", "sketchcore.__main__")),
    ("package facade", ("sketchcore",)),
]


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package). The compiled ``_core`` counts through its stub."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")) + [ROOT / "_core.pyi"]:
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str) -> set[str]:
    """The package modules ``name`` imports anywhere (functions included)."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        if target in MODULES:
            found.add(target)

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                add(alias.name)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # "from package import module" imports the module itself.
                if f"{source}.{alias.name}" in MODULES:
                    add(f"{source}.{alias.name}")
                else:
                    add(source)

    Visitor().visit(ast.parse(path.read_text(), str(path)))
    found.discard(name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def layer_of(name: str) -> int:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{name} belongs to no layer"
    return best


def test_graph_sees_the_package():
    assert {"sketchcore.core.operator", "sketchcore.core.sketch", "sketchcore.learning.estimators",
            "sketchcore.backends.rust", "sketchcore._core"} <= set(MODULES)
    assert "sketchcore.core.sketch" in GRAPH["sketchcore.core.operator"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_has_a_layer(name):
    layer_of(name)


def test_no_import_cycle():
    # Depth-first search; a back edge is a cycle, reported with its path.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_lower_layers_never_import_higher_ones():
    wrong = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert not wrong, "\n".join(wrong)


def test_core_imports_no_backend():
    core = [name for name in GRAPH if layer_of(name) == 0]
    assert not [(name, t) for name in core for t in GRAPH[name] if layer_of(t) > 0]


def test_library_code_reports_through_logging_not_print():
    """Only the command line and the demo print; the rest logs (or uses tqdm)."""
    printing = []
    for name, (path, _) in sorted(MODULES.items()):
        if layer_of(name) >= layer_of("sketchcore.cli") or path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not printing, printing
