#!/usr/bin/env bash
# Checks a binary wheel as a user without a Rust toolchain meets it:
#   tools/check_wheel.sh dist/sketchcore-*.whl
# The compiled module needs at most glibc 2.17 (manylinux2014); the wheel is
# installed into a fresh virtual environment with no cargo or rustc on PATH,
# away from the source tree, and there it imports, sketches (checked against
# the NumPy reference), fits a model and runs the command line.
set -euo pipefail
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 WHEEL" >&2; exit 2; }
wheel=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Newest glibc symbol version the extension module asks for.
python3 - "$wheel" "$work" <<'PY'
import re, subprocess, sys, zipfile
wheel, work = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    so = [n for n in z.namelist() if re.search(r"sketchcore/_core.*\.so$", n)]
    assert len(so) == 1, so
    path = z.extract(so[0], work)
syms = subprocess.run(["objdump", "-T", path], capture_output=True, text=True, check=True).stdout
versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", syms)}
newest = max(versions)
print(f"{so[0]}: newest glibc symbol version {'.'.join(map(str, newest))}")
assert newest <= (2, 17), "the module needs a glibc newer than manylinux2014's 2.17"
assert "manylinux" in wheel.rsplit("/", 1)[-1], "not tagged manylinux"
PY

python3 -m venv "$work/venv"
# PATH without any folder holding cargo or rustc.
clean=$(python3 - <<'PY'
import os
keep = [d for d in os.environ["PATH"].split(os.pathsep)
        if d and not any(os.path.exists(os.path.join(d, tool)) for tool in ("cargo", "rustc"))]
print(os.pathsep.join(keep))
PY
)
cd "$work"
env -u CARGO_HOME -u RUSTUP_HOME -u VIRTUAL_ENV PATH="$work/venv/bin:$clean" bash -euo pipefail -c '
    if command -v cargo || command -v rustc; then echo "a Rust toolchain is still on PATH" >&2; exit 1; fi
    python -m pip install -q "$1"
    python - <<PY
import numpy as np
import sketchcore
from sketchcore.backends.reference import sketch_reference

assert "site-packages" in sketchcore.__file__, sketchcore.__file__
X = np.random.default_rng(0).normal(size=(20000, 8))
op = sketchcore.SketchOperator(8, 400, sigma=1.0, seed=0)
sk = op.sketch(X)
ref = sketch_reference(op, X)
err = np.linalg.norm(sk.z - ref.z) / np.linalg.norm(ref.z)
assert err < 1e-9, err
km = sketchcore.CompressiveKMeans(2, random_state=0, n_replicates=1).fit(X[:2000])
print(f"sketchcore {sketchcore.__version__} from {sketchcore.__file__}: SIMD {sketchcore.simd_level()}, "
      f"sketch of 20000 rows within {err:.1e} of the NumPy reference, k-means fitted")
PY
    sketchcore --version
' _ "$wheel"
echo "wheel OK: $(basename "$wheel")"
