#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: the CUDA tests (the `gpu`-marked
# ones run on the device; the NVRTC and emulation ones too), then the CUDA
# benchmark. Needs CuPy; uses the installed sketchcore, or the source tree's
# python/ folder when sketchcore is not installed (a built extension in it).
#
#   bash tools/gpu_check.sh [OUTPUT_DIR]    # logs to OUTPUT_DIR (default: .)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import sketchcore" 2>/dev/null || export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$out/gpu.txt"
python3 -c "import cupy, sketchcore; print('cupy', cupy.__version__, 'sketchcore', sketchcore.__file__)" \
    | tee -a "$out/gpu.txt"
python3 -m pytest tests/test_cuda.py -m "gpu or not slow" -rA -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log"
tests=${PIPESTATUS[0]}
python3 examples/benchmark_cuda.py "${@:2}" 2>&1 | tee "$out/gpu_benchmark.log"
bench=${PIPESTATUS[0]}
echo "tests exit $tests, benchmark exit $bench"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
