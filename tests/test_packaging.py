"""Packaging as a user meets it: the test extra pulls no CUDA wheels, the
licence and metadata are declared, the source distribution carries the
examples. (The binary wheel itself is built and used without Rust by
tools/build_wheel.sh and tools/check_wheel.sh in CI.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")

pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_test_extra_pulls_no_cuda_wheels(project):
    extras = project["optional-dependencies"]
    assert not [r for r in extras["test"] if r.lower().startswith(("nvidia", "cupy"))]
    assert [r for r in extras["nvrtc"] if r.startswith("nvidia-cuda-nvrtc-cu12")]


def test_licence_and_classifiers(project):
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in text
    assert project["license"] == {"text": "BSD-3-Clause"}
    classifiers = set(project["classifiers"])
    assert "License :: OSI Approved :: BSD License" in classifiers
    assert {"Programming Language :: Python :: 3.10", "Operating System :: POSIX :: Linux"} <= classifiers


@pytest.mark.skipif(shutil.which("maturin") is None, reason="needs maturin")
def test_sdist_carries_the_examples(tmp_path):
    run = subprocess.run(["maturin", "sdist", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (sdist,) = tmp_path.glob("sketchcore-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in tar.getnames()}
    tracked = subprocess.run(["git", "ls-files", "examples/*.py"], cwd=ROOT, capture_output=True, text=True)
    examples = set(tracked.stdout.split()) or {p.relative_to(ROOT).as_posix() for p in ROOT.glob("examples/*.py")}
    assert examples and examples <= names
    assert {"LICENSE", "README.md", "pyproject.toml", "Cargo.lock"} <= names
    assert not [n for n in names if "__pycache__" in n]
