"""Bad input gets a specific, named error; no panic ever reaches Python."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import sketchcore
from sketchcore import _core
from sketchcore.exceptions import (
    DataShapeError,
    DimensionMismatchError,
    DTypeError,
    InternalError,
    InvalidParameterError,
    NegativeWeightError,
    NonFiniteError,
    SketchcoreError,
)

OP = sketchcore.SketchOperator(3, 16, seed=0)
X = np.random.default_rng(0).normal(size=(5000, 3))


@pytest.mark.parametrize("backend", ["rust", "numpy"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_data_names_first_row(backend, bad, dtype):
    Xb = X.astype(dtype)
    Xb[4321, 0] = bad
    Xb[777, 2] = bad
    with pytest.raises(NonFiniteError) as info:
        OP.sketch(Xb, backend=backend)
    assert info.value.row == 777 and info.value.column == 2
    assert "row 777" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights(bad):
    w = np.ones(5000)
    w[12] = bad
    with pytest.raises(NonFiniteError) as info:
        OP.sketch(X, w)
    assert info.value.row == 12


def test_negative_weights():
    w = np.ones(5000)
    w[40] = -0.5
    with pytest.raises(NegativeWeightError) as info:
        OP.sketch(X, w)
    assert info.value.index == 40 and "-0.5" in str(info.value)


@pytest.mark.parametrize(
    "data,error",
    [
        (np.ones((10, 4)), DimensionMismatchError),
        (np.ones((10, 2)), DimensionMismatchError),
        (np.ones(3), DataShapeError),
        (np.ones((2, 3, 3)), DataShapeError),
        (np.float64(1.0), DataShapeError),
        (np.ones((4, 3), dtype=np.complex128), DTypeError),
        (np.array([["a", "b", "c"]]), DTypeError),
        (np.array([[object(), 1, 2]], dtype=object), DTypeError),
        ("not an array", DTypeError),
        (None, DTypeError),
    ],
)
def test_wrong_shape_or_dtype(data, error):
    with pytest.raises(error) as info:
        OP.sketch(data)
    assert isinstance(info.value, (ValueError, SketchcoreError))


def test_one_d_message_helps():
    with pytest.raises(DataShapeError, match="reshape"):
        OP.sketch(np.ones(3))


def test_integer_and_bool_and_half_inputs_are_converted():
    Xi = np.arange(30).reshape(10, 3)
    assert OP.sketch(Xi) == OP.sketch(Xi.astype(np.float64))
    Xh = X[:10].astype(np.float16)
    assert OP.sketch(Xh) == OP.sketch(Xh.astype(np.float32))
    assert OP.sketch(Xi.tolist()) == OP.sketch(Xi.astype(np.float64))
    Xbig = X[:10].astype(">f8")  # non-native byte order
    assert OP.sketch(Xbig) == OP.sketch(X[:10])


@pytest.mark.parametrize(
    "weights,error",
    [
        (np.ones(4999), DimensionMismatchError),
        (np.ones((5000, 1)), DataShapeError),
        (np.ones(5000, dtype=complex), DTypeError),
    ],
)
def test_bad_weights(weights, error):
    with pytest.raises(error):
        OP.sketch(X, weights)


def test_bad_call_parameters():
    with pytest.raises(InvalidParameterError):
        OP.sketch(X, backend="fortran")
    with pytest.raises(InvalidParameterError):
        OP.sketch(X, simd="avx9000")
    with pytest.raises(InvalidParameterError):
        OP.sketch(X, n_threads=0)
    with pytest.raises(InvalidParameterError):
        OP.sketch(X, n_threads=1.5)


def test_core_rejects_bad_arrays_with_typed_errors():
    om = OP.frequencies
    with pytest.raises(DTypeError):
        _core.sketch_dense(X.astype(np.float32), om)  # float64 omega for float32 data
    with pytest.raises(DTypeError):
        _core.sketch_dense(X.astype(np.int64), om)
    with pytest.raises(DTypeError):
        _core.sketch_dense(X[:, 0].copy(), om)
    with pytest.raises(DimensionMismatchError):
        _core.sketch_dense(X, om[:2])
    with pytest.raises(DimensionMismatchError):
        _core.sketch_dense(X, om, np.zeros(5))
    with pytest.raises(DimensionMismatchError):
        _core.sketch_dense(X, om, None, np.ones(3))
    with pytest.raises(NegativeWeightError):
        _core.sketch_dense(X, om, None, -np.ones(5000))
    with pytest.raises(DimensionMismatchError):
        _core.sketch_dense_reference_f64(X, om[:2])
    with pytest.raises(DTypeError):
        _core.sin_cos(np.ones((2, 2)))


def test_panic_becomes_internal_error():
    with pytest.raises(InternalError, match="deliberate test panic"):
        _core._panic_for_testing()
    # The interpreter is intact afterwards.
    assert OP.sketch(X[:5]).count == 5


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_a_long_call():
    script = textwrap.dedent(
        """
        import signal, sys, time, numpy as np, sketchcore
        # A shell that starts jobs in the background hands them SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        X = np.zeros((4_000_000, 16), dtype=np.float32)
        op = sketchcore.SketchOperator(16, 4000, seed=0)
        print("start", flush=True)
        t = time.perf_counter()
        try:
            op.sketch(X, n_threads=1)
        except KeyboardInterrupt:
            print(f"interrupted after {time.perf_counter() - t:.2f}s", flush=True)
            sys.exit(3)
        print("finished", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start"
    time.sleep(0.5)
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    # Batches of <= 1M rows: the signal is seen within about a second.
    assert proc.returncode == 3, out
    assert "interrupted" in out
    assert time.perf_counter() - t0 < 20
