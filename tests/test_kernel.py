"""The Rust kernel against the float64 NumPy reference and the scalar Rust reference."""

from __future__ import annotations

import numpy as np
import pytest

import sketchcore
from conftest import LEVELS, ODD_ROWS, TOL, mixture, rel_err
from sketchcore import _core
from sketchcore.backends.reference import sketch_reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", ODD_ROWS)
@pytest.mark.parametrize("dither", [False, True])
def test_rust_matches_numpy_reference(n, dtype, dither, simd):
    d, m = 13, 129
    op = sketchcore.SketchOperator(d, m, sigma=3.0, dither=dither, seed=n)
    X = mixture(n, d, seed=n, dtype=dtype)
    got = op.sketch(X, simd=simd)
    ref = sketch_reference(op, X.astype(np.float64))
    assert got.count == ref.count == n
    assert got.weight == ref.weight == n
    if n == 0:
        assert np.all(got.cos_sums == 0) and np.all(got.sin_sums == 0)
        assert np.all(np.isposinf(got.lower)) and np.all(np.isneginf(got.upper))
        return
    assert rel_err(got.z, ref.z) < TOL[dtype]
    np.testing.assert_array_equal(got.lower, X.min(axis=0).astype(np.float64))
    np.testing.assert_array_equal(got.upper, X.max(axis=0).astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "transposed"])
def test_non_contiguous_layouts(dtype, layout, simd):
    rng = np.random.default_rng(1)
    d, m, n = 9, 70, 300
    big = rng.normal(size=(2 * n, 3 * d)).astype(dtype)
    X = {
        "fortran": np.asfortranarray(big[:n, :d]),
        "strided": big[::2, 1::3],
        "reversed": big[::-2, ::-3],
        "transposed": np.ascontiguousarray(big[:n, :d].T).T,
    }[layout]
    assert X.shape == (n, d) and not X.flags.c_contiguous
    op = sketchcore.SketchOperator(d, m, sigma=2.0, seed=3, dither=True)
    w = rng.uniform(0, 2, size=2 * n)[::2]  # strided weights too
    got = op.sketch(X, w, simd=simd)
    ref = sketch_reference(op, np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(w))
    assert rel_err(got.z, ref.z) < TOL[dtype]
    assert got.weight == pytest.approx(w.sum(), rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weights(dtype, simd):
    rng = np.random.default_rng(2)
    X = mixture(517, 6, seed=2, dtype=dtype)
    w = rng.exponential(size=517)
    w[::7] = 0.0
    op = sketchcore.SketchOperator(6, 40, seed=4)
    got = op.sketch(X, weights=w, simd=simd)
    ref = sketch_reference(op, X.astype(np.float64), w)
    assert rel_err(got.z, ref.z) < TOL[dtype]
    # Integer weights are replication: weight 2 equals the row twice.
    w2 = np.ones(517)
    w2[:10] = 2.0
    twice = op.sketch(np.concatenate([X, X[:10]]), simd=simd)
    assert rel_err(op.sketch(X, w2, simd=simd).z, twice.z) < TOL[dtype]


def test_matches_scalar_rust_reference():
    X = mixture(129, 17, seed=5)
    op = sketchcore.SketchOperator(17, 33, seed=6, dither=True)
    w = np.random.default_rng(5).uniform(size=129)
    cos, sin, weight, count, lower, upper = _core.sketch_dense_reference_f64(X, op.frequencies, op.dither, w)
    got = op.sketch(X, w)
    assert rel_err(got.cos_sums + 1j * got.sin_sums, cos + 1j * sin) < 1e-12
    assert (got.weight, got.count) == (pytest.approx(weight, rel=1e-14), count)
    np.testing.assert_array_equal(got.lower, lower)


def test_bitwise_independent_of_threads():
    X = mixture(3 * 4096 + 5, 8, seed=7, dtype=np.float32)
    op = sketchcore.SketchOperator(8, 100, seed=8)
    one = op.sketch(X, n_threads=1)
    for t in (2, 3):
        assert op.sketch(X, n_threads=t) == one


def test_all_levels_agree():
    X = mixture(1000, 10, seed=9, dtype=np.float32)
    op = sketchcore.SketchOperator(10, 100, seed=10)
    ref = sketch_reference(op, X.astype(np.float64)).z
    for level in LEVELS:
        assert rel_err(op.sketch(X, simd=level).z, ref) < 1e-5, level


def test_numpy_backend_is_the_reference():
    X = mixture(100, 4, seed=11)
    op = sketchcore.SketchOperator(4, 20, seed=12)
    a = op.sketch(X, backend="numpy")
    b = sketch_reference(op, X)
    assert a == b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sin_cos_precision(dtype, simd):
    # Stated precision: |error| < 2e-7 (float32) / 1e-15 (float64), |t| <= 1e4.
    rng = np.random.default_rng(13)
    t = np.concatenate(
        [
            np.linspace(-10, 10, 100_001),
            rng.uniform(-1e4, 1e4, 100_000),
            np.arange(-6366, 6367) * (np.pi / 2),
            [0.0, -0.0, 1e-30],
        ]
    ).astype(dtype)
    s, c = _core.sin_cos(t, simd=simd)
    exact = t.astype(np.float64)
    tol = 2e-7 if dtype == np.float32 else 1e-15
    assert np.max(np.abs(s - np.sin(exact))) < tol
    assert np.max(np.abs(c - np.cos(exact))) < tol


def test_large_values_stay_accurate():
    # |omega . x| far beyond the fast reduction range takes the exact path.
    X = mixture(200, 3, seed=14) * 1e4
    op = sketchcore.SketchOperator(3, 50, sigma=1e-2, seed=15)
    assert rel_err(op.sketch(X).z, sketch_reference(op, X).z) < 1e-10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3, 8, 17, 64, 100, 513])
def test_structured_kernel_matches_reference_on_materialised_matrix(d, dtype, simd):
    p = 1 << (d - 1).bit_length()
    m = 2 * p + 5  # last block truncated
    op = sketchcore.SketchOperator(d, m, kind="structured", sigma=float(np.sqrt(d)), dither=True, seed=d)
    for n in (1, 17, 129):
        X = mixture(n, d, seed=n + d, dtype=dtype)
        got = op.sketch(X, simd=simd)
        ref = sketch_reference(op, X.astype(np.float64))
        assert rel_err(got.z, ref.z) < TOL[dtype], (d, n)


@pytest.mark.parametrize("kind", ["dense", "structured"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantized_sketch(kind, dtype, simd):
    op = sketchcore.SketchOperator(10, 300, kind=kind, dither=True, quantize=True, seed=3)
    X = mixture(500, 10, seed=4, dtype=dtype)
    got = op.sketch(X, simd=simd)
    # Every sample contributes +-1 per coordinate: sums are integers of the
    # parity of N, bounded by N.
    for sums in (got.cos_sums, got.sin_sums):
        np.testing.assert_array_equal(sums, np.round(sums))
        assert np.all(np.abs(sums) <= 500) and np.all(sums % 2 == 0)
    ref = sketch_reference(op, X.astype(np.float64))
    if dtype == np.float64:
        np.testing.assert_array_equal(got.cos_sums, ref.cos_sums)
    else:  # float32 phases may flip the sign of a value within ~1e-6 of zero
        assert np.mean(got.cos_sums != ref.cos_sums) < 0.02
    # Merges refuse to mix quantized and unquantized sketches.
    plain = sketchcore.SketchOperator(10, 300, kind=kind, dither=True, seed=3)
    with pytest.raises(sketchcore.exceptions.OperatorMismatchError):
        got + plain.sketch(X)
