"""The Rust atom kernels (the decoders' hot loop) against the NumPy reference.

Tolerances: float64 frequencies 1e-12 relative (atoms absolute 1e-13);
float32 frequencies 1e-4 relative to the objective scale (phases rounded to
float32). The gradient is checked against central finite differences of the
NumPy reference objective.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sketchcore import SketchOperator, _core
from sketchcore.exceptions import DimensionMismatchError, DTypeError, InvalidParameterError
from sketchcore.learning.atoms import AtomModel

# (K, d, m): single atoms, m around vector widths and the kernel's blocks of 256 / groups of 1024.
SHAPES = [(1, 1, 1), (1, 3, 7), (2, 12, 15), (3, 5, 16), (4, 2, 17), (5, 12, 255), (7, 17, 257), (2, 10, 1025),
          (64, 12, 2049), (6, 150, 300), (9, 257, 100)]  # d above the kernels' packing threshold (128)


def _model(d, m, gaussian, quantize=False, seed=0):
    op = SketchOperator(d, m, sigma=1.3, seed=seed, dither=True, quantize=quantize)
    lo, hi = np.full(d, -3.0), np.full(d, 3.0)
    return AtomModel(op, gaussian, lo, hi, var_bounds=(np.full(d, 1e-3), np.full(d, 4.0)) if gaussian else None)


def _theta(model, k, rng):
    means = rng.normal(size=(k, model.d))
    if not model.gaussian:
        return means
    return np.hstack([means, rng.uniform(0.02, 0.8, size=(k, model.d))])


def _sketch(model, rng):
    m = model.omega.shape[1]
    return rng.normal(size=m) * 0.3 + 1j * rng.normal(size=m) * 0.3


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_atoms_and_objective_match_numpy(shape, gaussian, simd):
    k, d, m = shape
    rng = np.random.default_rng(k * 1000 + d * 10 + m)
    model = _model(d, m, gaussian, quantize=(k % 2 == 0))
    theta = _theta(model, k, rng)
    means, var = model.split(theta)
    kw = {"omega_sq": model.omega2, "variances": np.ascontiguousarray(var)} if gaussian else {}
    re, im = _core.atoms(model.omega, model.xi, np.ascontiguousarray(means), gain=model.gain, simd=simd, **kw)
    ref = model.atoms_reference(theta)
    np.testing.assert_allclose(re, ref.real, rtol=0, atol=1e-13)
    np.testing.assert_allclose(im, ref.imag, rtol=0, atol=1e-13)

    z = _sketch(model, rng)
    x = np.concatenate([theta.ravel(), rng.uniform(0.1, 1.0, size=k)])
    f, g = model.objective_and_grad(x, z, k)
    f_ref, g_ref = model.objective_and_grad_reference(x, z, k)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-10 * max(1.0, np.abs(g_ref).max()))


@pytest.mark.parametrize("gaussian", [False, True])
def test_float32_frequencies(gaussian, simd):
    k, d, m = 5, 12, 1500
    rng = np.random.default_rng(5)
    model = _model(d, m, gaussian)
    theta = _theta(model, k, rng)
    means, var = model.split(theta)
    om32, xi32, sq32 = (a.astype(np.float32)
                        for a in (model.omega, model.xi, model.omega2 if gaussian else model.omega))
    kw32 = {"omega_sq": sq32, "variances": np.ascontiguousarray(var)} if gaussian else {}
    re, im = _core.atoms(om32, xi32, np.ascontiguousarray(means), simd=simd, **kw32)
    ref = model.atoms_reference(theta)
    # Phases of size ~10 rounded to float32: ~1e-6 absolute.
    np.testing.assert_allclose(re, ref.real, atol=2e-5)
    np.testing.assert_allclose(im, ref.imag, atol=2e-5)
    z = _sketch(model, rng)
    alpha = rng.uniform(0.1, 1.0, size=k)
    f32, gm32, gv32, ga32 = _core.atom_objective(om32, xi32, np.ascontiguousarray(means), alpha,
                                                 z.real.copy(), z.imag.copy(), simd=simd, **kw32)
    f_ref, g_ref = model.objective_and_grad_reference(np.concatenate([theta.ravel(), alpha]), z, k)
    assert f32 == pytest.approx(f_ref, rel=1e-4)
    scale = np.abs(g_ref).max()
    np.testing.assert_allclose(ga32, g_ref[-k:], atol=1e-4 * scale)


def test_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    model = _model(6, 300, True)
    big = rng.normal(size=(8, 24))
    means = big[::2, 1:13:2]  # strided rows and columns
    var = np.abs(big[1::2, 2:14:2]) + 0.1
    omega_f = np.asfortranarray(model.omega)
    re, im = _core.atoms(omega_f, model.xi[::-1][::-1], means, omega_sq=model.omega2[:, ::1], variances=var)
    ref = model.atoms_reference(np.hstack([means, var]))
    np.testing.assert_allclose(re + 1j * im, ref, atol=1e-13)
    omega_rev = model.omega[:, ::-1]
    re2, _ = _core.atoms(omega_rev, model.xi[::-1].copy(), means)
    ref2 = np.exp(1j * (means @ omega_rev + model.xi[::-1]))
    np.testing.assert_allclose(re2, ref2.real, atol=1e-13)


@pytest.mark.parametrize("gaussian", [False, True])
def test_gradient_matches_finite_differences(gaussian):
    k, d, m = 3, 4, 400
    rng = np.random.default_rng(11)
    model = _model(d, m, gaussian)
    theta = _theta(model, k, rng)
    z = _sketch(model, rng)
    x = np.concatenate([theta.ravel(), rng.uniform(0.2, 1.0, size=k)])
    _, g = model.objective_and_grad(x, z, k)
    h = 1e-6
    fd = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        f_plus = model.objective_and_grad_reference(x + e, z, k)[0]
        fd[i] = (f_plus - model.objective_and_grad_reference(x - e, z, k)[0]) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max())


def test_bitwise_independent_of_threads():
    rng = np.random.default_rng(2)
    model = _model(12, 5000, True)
    theta = _theta(model, 9, rng)
    means, var = model.split(theta)
    z = _sketch(model, rng)
    alpha = rng.uniform(size=9)
    args = (model.omega, model.xi, np.ascontiguousarray(means), alpha, z.real.copy(), z.imag.copy())
    kw = {"omega_sq": model.omega2, "variances": np.ascontiguousarray(var)}
    outs = [_core.atom_objective(*args, n_threads=t, **kw) for t in (1, 2, 3)]
    for o in outs[1:]:
        assert o[0] == outs[0][0]
        for a, b in zip(o[1:], outs[0][1:], strict=True):
            np.testing.assert_array_equal(a, b)


def test_bad_arguments_raise_typed_errors():
    model = _model(3, 50, True)
    means = np.zeros((2, 3))
    with pytest.raises(DimensionMismatchError):
        _core.atoms(model.omega, model.xi, np.zeros((2, 4)))
    with pytest.raises(DimensionMismatchError):
        _core.atoms(model.omega, model.xi[:-1], means)
    with pytest.raises(InvalidParameterError):
        _core.atoms(model.omega, model.xi, means, variances=np.ones((2, 3)))
    with pytest.raises(DTypeError):
        _core.atoms(model.omega, model.xi.astype(np.float32), means)
    with pytest.raises(DTypeError):
        _core.atoms(model.omega.astype(np.int64), model.xi, means)
    with pytest.raises(DimensionMismatchError):
        _core.atom_objective(model.omega, model.xi, means, np.ones(3), np.zeros(50), np.zeros(50))
    with pytest.raises(DimensionMismatchError):
        _core.atom_objective(model.omega, model.xi, means, np.ones(2), np.zeros(49), np.zeros(50))
    # No atoms: the objective is ||z||^2 and every gradient is empty.
    z = np.arange(50.0)
    f, gm, gv, ga = _core.atom_objective(model.omega, model.xi, np.zeros((0, 3)), np.zeros(0), z, z)
    assert f == pytest.approx(2 * float(z @ z))
    assert gm.shape == (0, 3) and gv is None and ga.shape == (0,)


def test_quantized_gain_is_first_harmonic():
    model = _model(4, 64, False, quantize=True)
    assert model.gain == pytest.approx(4 / math.pi)
    re, im = model.atoms_re_im(np.zeros((1, 4)))
    np.testing.assert_allclose(np.hypot(re, im), 4 / math.pi, rtol=1e-15)


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_correlation_kernel_matches_numpy(shape, gaussian, simd):
    """CL-OMPR step 1: scores and the single-atom correlation gradient."""
    k, d, m = shape
    rng = np.random.default_rng(k + 31 * d + m)
    model = _model(d, m, gaussian, quantize=(m % 2 == 1))
    theta = _theta(model, k, rng)
    r = _sketch(model, rng)
    a = model.atoms_reference(theta)
    want = (a.conj() * r).real.sum(axis=1) / np.linalg.norm(a, axis=1)
    np.testing.assert_allclose(model.correlation(theta, r), want, rtol=1e-12, atol=1e-12 * math.sqrt(m))
    # The kernel's five sums against NumPy.
    args, kwargs = model._kernel_arrays(theta)
    inner, norm_sq, g_mean, g_var, n_var = _core.atom_correlation(
        *args, r.real.copy(), r.imag.copy(), gradients=True, simd=simd, **kwargs)
    p = a.conj() * r[None, :]
    scale = np.abs(model.omega).max() * m
    np.testing.assert_allclose(inner, p.real.sum(1), rtol=1e-12, atol=1e-13 * m)
    np.testing.assert_allclose(norm_sq, (np.abs(a) ** 2).sum(1), rtol=1e-12)
    np.testing.assert_allclose(g_mean, p.imag @ model.omega.T, rtol=1e-10, atol=1e-12 * scale)
    if gaussian:
        np.testing.assert_allclose(g_var, p.real @ model.omega2.T, rtol=1e-10, atol=1e-12 * scale**2)
        np.testing.assert_allclose(n_var, (np.abs(a) ** 2) @ model.omega2.T, rtol=1e-10, atol=1e-12 * scale**2)
    else:
        assert g_var is None and n_var is None
    f, g = model.neg_correlation_and_grad(theta[0], r)
    f_ref, g_ref = model.neg_correlation_and_grad_reference(theta[0], r)
    assert f == pytest.approx(f_ref, rel=1e-12, abs=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-11 * max(1.0, np.abs(g_ref).max()))
    # The reference gradient itself, by central differences.
    h = 1e-6
    fd = [
        (model.neg_correlation_and_grad_reference(theta[0] + h * e, r)[0]
         - model.neg_correlation_and_grad_reference(theta[0] - h * e, r)[0]) / (2 * h)
        for e in np.eye(theta.shape[1])
    ]
    np.testing.assert_allclose(g_ref, fd, rtol=1e-5, atol=1e-6)


def _structured_pair(d, m, gaussian, seed=0):
    """An AtomModel on a structured operator and one on its materialised matrix."""
    op = SketchOperator(d, m, sigma=1.1, seed=seed, dither=True, kind="structured")
    dense = SketchOperator.__new__(SketchOperator)
    dense.__dict__.update(op.__dict__)
    dense._frequencies = None
    lo, hi = np.full(d, -3.0), np.full(d, 3.0)
    vb = (np.full(d, 1e-3), np.full(d, 4.0)) if gaussian else None
    structured = AtomModel(op, gaussian, lo, hi, var_bounds=vb)
    materialised = AtomModel(dense, gaussian, lo, hi, var_bounds=vb)
    materialised.structured = False  # read the d x m matrix (materialised below)
    return structured, materialised, op


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 3, 37), (5, 12, 1000), (3, 17, 1100), (2, 100, 2500), (2, 600, 2100)])
def test_structured_atoms_never_materialise_and_equal_dense(shape, gaussian):
    k, d, m = shape
    rng = np.random.default_rng(d + m)
    structured, materialised, op = _structured_pair(d, m, gaussian)
    theta = _theta(structured, k, rng)
    z = rng.normal(size=m) + 1j * rng.normal(size=m)
    x = np.concatenate([theta.ravel(), rng.uniform(0.1, 1.0, size=k)])
    got = (structured.atoms_re_im(theta), structured.objective_and_grad(x, z, k), structured.correlation(theta, z),
           structured.neg_correlation_and_grad(theta[0], z), structured.atoms_re_im(theta, slice(m // 3, m - 1)))
    assert op._frequencies is None and op._squared is None, "the structured path materialised Omega"
    want = (materialised.atoms_re_im(theta), materialised.objective_and_grad(x, z, k),
            materialised.correlation(theta, z), materialised.neg_correlation_and_grad(theta[0], z),
            materialised.atoms_re_im(theta, slice(m // 3, m - 1)))
    # Same frequencies bit for bit (one rounding of scale x integer), same
    # arithmetic: equal up to the order of the group sums when p > 1024.
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_structured_frequency_spec_errors():
    structured, _, op = _structured_pair(5, 40, True)
    means = np.zeros((1, 5))
    with pytest.raises(InvalidParameterError):
        _core.atoms((op.signs, op.scales, 0), op.dither, means, omega_sq=np.ones((5, 40)), variances=np.ones((1, 5)))
    with pytest.raises(DimensionMismatchError):
        _core.atoms((op.signs, op.scales, 8), op.dither, means)  # blocks end at column 40
    with pytest.raises(DimensionMismatchError):
        _core.atoms((op.signs, op.scales, 0), op.dither, np.zeros((1, 9)))  # p = 8 < d
    with pytest.raises(DTypeError):
        _core.atoms((op.signs.astype(np.float32), op.scales, 0), op.dither, means)
    with pytest.raises(DTypeError):
        _core.atoms((op.signs, op.scales), op.dither, means)


def test_standardized_structured_atoms_never_materialise():
    """A structured sketch seen from standardised coordinates (what the CLI and
    the demo decode): frequencies std * Omega generated on the fly."""
    from sketchcore.core.standardized import StandardizedOperator

    d, m, k = 11, 700, 3
    rng = np.random.default_rng(4)
    base = SketchOperator(d, m, sigma=2.0, seed=5, kind="structured", dither=True)
    mean, std = rng.normal(size=d), rng.uniform(0.2, 3.0, size=d)
    op = StandardizedOperator(base, mean, std)
    model = AtomModel(op, True, np.full(d, -3.0), np.full(d, 3.0), var_bounds=(np.full(d, 1e-3), np.full(d, 4.0)))
    assert model.structured
    theta = _theta(model, k, rng)
    z = rng.normal(size=m) + 1j * rng.normal(size=m)
    x = np.concatenate([theta.ravel(), rng.uniform(0.1, 1.0, size=k)])
    got = (model.atoms_re_im(theta), model.objective_and_grad(x, z, k), model.correlation(theta, z))
    assert op._frequencies is None and base._frequencies is None, "Omega was materialised"
    # The dither from fast transforms equals the materialised formula.
    np.testing.assert_allclose(op.dither, base.dither + mean @ base.frequencies, rtol=1e-13, atol=1e-12)
    dense = AtomModel(op, True, model.lower, model.upper, var_bounds=(model.var_lower, model.var_upper))
    dense.structured = False  # the materialised std[:, None] * Omega
    want = (dense.atoms_re_im(theta), dense.objective_and_grad(x, z, k), dense.correlation(theta, z))
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(op.project(theta[:, :d]), theta[:, :d] @ op.frequencies, rtol=1e-12, atol=1e-12)
    with pytest.raises(DimensionMismatchError):
        _core.atoms((base.signs, base.scales, 0, std[:-1]), op.dither, np.zeros((1, d)))


# (K, d, m, support): one atom and several, m around the groups of 1024, support 1 to d / 4.
SPARSE_SHAPES = [(1, 4, 1, 1), (1, 8, 37, 2), (3, 12, 1025, 3), (10, 60, 2049, 4), (2, 192, 700, 4), (5, 33, 300, 8)]


@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("shape", SPARSE_SHAPES)
def test_sparse_operators_use_the_sparse_kernels_and_match_numpy(shape, gaussian, simd):
    k, d, m, support = shape
    rng = np.random.default_rng(k + d + m + support)
    op = SketchOperator(d, m, sigma=1.1, seed=3, kind="sparse", support=support, dither=True, quantize=(k % 2 == 1))
    model = AtomModel(op, gaussian, np.full(d, -3.0), np.full(d, 3.0),
                      var_bounds=(np.full(d, 1e-3), np.full(d, 4.0)) if gaussian else None)
    assert model._sparse is not None
    index, value = model._sparse
    assert index.shape == (m, support) and index.dtype == np.uint32
    dense = np.zeros((d, m))
    dense[index.T.astype(np.intp), np.arange(m)] = value.T
    np.testing.assert_array_equal(dense, op.frequencies)  # the same frequencies, every non-zero kept
    theta = _theta(model, k, rng)
    ref = model.atoms_reference(theta)
    re, im = model.atoms_re_im(theta)
    np.testing.assert_allclose(re, ref.real, rtol=0, atol=1e-13)
    np.testing.assert_allclose(im, ref.imag, rtol=0, atol=1e-13)
    re, im = model.atoms_re_im(theta, slice(m // 3, m))
    np.testing.assert_allclose(re + 1j * im, ref[:, m // 3:], rtol=0, atol=1e-13)
    kw = {"variances": np.ascontiguousarray(theta[:, d:])} if gaussian else {}
    re, im = _core.sparse_atoms(index, value, op.dither, np.ascontiguousarray(theta[:, :d]), gain=model.gain,
                                simd=simd, **kw)
    np.testing.assert_allclose(re, ref.real, rtol=0, atol=1e-13)

    z = _sketch(model, rng)
    x = np.concatenate([theta.ravel(), rng.uniform(0.1, 1.0, size=k)])
    f, g = model.objective_and_grad(x, z, k)
    f_ref, g_ref = model.objective_and_grad_reference(x, z, k)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-10 * max(1.0, np.abs(g_ref).max()))
    c, gc = model.neg_correlation_and_grad(theta[0], z)
    c_ref, gc_ref = model.neg_correlation_and_grad_reference(theta[0], z)
    assert c == pytest.approx(c_ref, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(gc, gc_ref, rtol=0, atol=1e-10 * max(1.0, np.abs(gc_ref).max()))
    a = model.atoms_reference(theta)
    want = (a.conj() @ z).real / np.linalg.norm(a, axis=1)
    np.testing.assert_allclose(model.correlation(theta, z), want, rtol=1e-11, atol=1e-12)


def test_standardized_sparse_operator_uses_the_sparse_kernels():
    """A sparse sketch seen from standardised coordinates (std * Omega keeps the zeros)."""
    from sketchcore.core.standardized import StandardizedOperator

    d, m, k = 20, 900, 4
    rng = np.random.default_rng(8)
    base = SketchOperator(d, m, sigma=2.0, seed=5, kind="sparse", support=3)
    op = StandardizedOperator(base, rng.normal(size=d), rng.uniform(0.2, 3.0, size=d))
    model = AtomModel(op, True, np.full(d, -3.0), np.full(d, 3.0), var_bounds=(np.full(d, 1e-3), np.full(d, 4.0)))
    assert model._sparse is not None and model._sparse[0].shape == (m, 3)
    theta = _theta(model, k, rng)
    z = rng.normal(size=m) + 1j * rng.normal(size=m)
    x = np.concatenate([theta.ravel(), rng.uniform(0.1, 1.0, size=k)])
    f, g = model.objective_and_grad(x, z, k)
    f_ref, g_ref = model.objective_and_grad_reference(x, z, k)
    assert f == pytest.approx(f_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-10 * np.abs(g_ref).max())


def test_dense_operators_keep_the_dense_kernels():
    assert _model(12, 300, True)._sparse is None
    # A sparse operator whose support is more than a quarter of d reads less with the dense kernels.
    op = SketchOperator(8, 100, sigma=1.0, seed=0, kind="sparse", support=4)
    assert AtomModel(op, False, np.full(8, -1.0), np.full(8, 1.0))._sparse is None


def test_sparse_kernel_errors_are_typed():
    index = np.array([[0, 1], [2, 3]], dtype=np.uint32)
    value, xi, means = np.ones((2, 2)), np.zeros(2), np.zeros((1, 4))
    with pytest.raises(InvalidParameterError, match="not below the dimension"):
        _core.sparse_atoms(index, value, xi, np.zeros((1, 3)))
    with pytest.raises(DimensionMismatchError):
        _core.sparse_atoms(index, np.ones((2, 1)), xi, means)
    with pytest.raises(DimensionMismatchError):
        _core.sparse_atom_correlation(index, value, xi, means, np.zeros(3), np.zeros(3))
    with pytest.raises(DimensionMismatchError):
        _core.sparse_atom_objective(index, value, xi, means, np.ones(2), np.zeros(2), np.zeros(2))
