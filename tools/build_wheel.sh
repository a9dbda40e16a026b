#!/usr/bin/env bash
# Builds the binary wheel users install without a Rust toolchain:
#   tools/build_wheel.sh [OUT_DIR]        (default: dist/)
# One abi3 wheel (CPython >= 3.10) tagged manylinux2014 (glibc >= 2.17),
# linked with zig (ziglang, from PyPI) against the old glibc. The Cargo target
# directory is the project's own (target/, or $CARGO_TARGET_DIR), so a build
# that follows `pip install .` reuses its compiled dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
python3 -m pip install -q 'maturin>=1.7,<2' 'ziglang>=0.13'
t0=$(date +%s)
python3 -m maturin build --release --zig --compatibility manylinux2014 --interpreter python3 --out "$out"
echo "wheel built in $(( $(date +%s) - t0 )) s:"
ls -1 "$out"/sketchcore-*manylinux*.whl
