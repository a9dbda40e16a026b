"""CUDA kernels, verified without a GPU: NVRTC compilation for sm_80/sm_90 and
the same source run on the CPU by the emulation harness against the NumPy
reference; real-GPU tests (marker ``gpu``) run only where CuPy sees a device."""

from __future__ import annotations

import numpy as np
import pytest

import sketchcore
from conftest import TOL, mixture, rel_err
from sketchcore.backends import cuda
from sketchcore.backends.reference import sketch_reference
from sketchcore.exceptions import BackendUnavailableError, InvalidParameterError


def _nvrtc_available() -> bool:
    try:
        cuda._nvrtc()
    except BackendUnavailableError:
        return False
    return True


@pytest.mark.skipif(not _nvrtc_available(), reason="NVRTC not installed (pip install nvidia-cuda-nvrtc-cu12)")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_with_nvrtc(arch):
    cubin = cuda.compile_kernels(arch)
    assert cubin[:4] == b"\x7fELF" and len(cubin) > 1000
    fast = cuda.compile_kernels(arch, fast_math=True)
    assert fast[:4] == b"\x7fELF"
    if cuda.nvrtc_version()[0] == 12:  # the [nvrtc] extra's: intrinsics, a different binary
        assert fast != cubin
    # NVRTC 13.0 (a CUDA 13.0 toolkit's libnvrtc.so) returned identical CUBINs
    # with and without --use_fast_math, while CuPy 14.2 (CUDA 13.2 runtime) applied it.
    with pytest.raises(RuntimeError, match="NVRTC failed"):
        cuda.compile_kernels(arch, source=cuda.KERNEL_SOURCE + "\nthis is not C++;\n")


@pytest.fixture(scope="module")
def emulator():
    try:
        cuda._emulator()
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,m", [(0, 3, 7), (1, 1, 1), (17, 3, 129), (129, 17, 33), (100, 700, 5)])
def test_emulated_kernel_matches_reference(emulator, dtype, n, d, m):
    op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), dither=True, seed=n + d)
    X = mixture(n, d, seed=n, dtype=dtype)
    w = np.random.default_rng(n).uniform(size=n)
    got = cuda.emulate_sketch(op, X, w)
    ref = sketch_reference(op, X.astype(np.float64), w)
    assert got.count == n
    if n:
        assert rel_err(got.z, ref.z) < TOL[dtype]
    else:
        assert got.weight == 0 and not np.any(got.cos_sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_kernel_strided_quantized_and_multi_block(emulator, dtype):
    big = mixture(400, 12, seed=3, dtype=dtype)
    X = big[::2, ::2]  # strided rows and columns
    op = sketchcore.SketchOperator(6, 200, dither=True, quantize=True, seed=4, sigma=2.0)
    cfg = cuda.LaunchConfig(rows_per_block=64, row_blocks=4)  # several row tiles, row and frequency blocks
    got = cuda.emulate_sketch(op, X, config=cfg)
    ref = sketch_reference(op, np.ascontiguousarray(X, dtype=np.float64))
    if dtype == np.float64:
        np.testing.assert_array_equal(got.cos_sums, ref.cos_sums)
    else:  # float32 phases can flip the sign of values within ~1e-6 of zero
        assert np.mean(got.cos_sums != ref.cos_sums) < 0.02


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,m", [(0, 3, 7), (1, 1, 1), (17, 3, 129), (65, 17, 100), (9, 64, 300), (5, 100, 130)])
def test_emulated_structured_kernel_matches_reference(emulator, dtype, n, d, m):
    """The structured kernel against the NumPy reference on the materialised
    frequencies (m not a multiple of the block size, d not a power of two)."""
    op = sketchcore.SketchOperator(d, m, sigma=float(np.sqrt(d)), kind="structured", dither=True, seed=n + d)
    X = mixture(n, d, seed=n, dtype=dtype)
    w = np.random.default_rng(n).uniform(size=n)
    got = cuda.emulate_sketch(op, X, w)
    ref = sketch_reference(op, X.astype(np.float64), w)
    assert got.count == n
    if n:
        assert rel_err(got.z, ref.z) < TOL[dtype]
        rust = op.sketch(X, weights=w)
        assert rel_err(got.z, rust.z) < TOL[dtype]
    else:
        assert got.weight == 0 and not np.any(got.cos_sums)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_emulated_structured_kernel_strided_quantized_multi_block(emulator, dtype):
    big = mixture(90, 40, seed=3, dtype=dtype)
    X = big[::3, ::2]  # strided rows and columns: 30 x 20
    op = sketchcore.SketchOperator(20, 150, kind="structured", dither=True, quantize=True, seed=4, sigma=2.0)
    cfg = cuda.StructuredLaunch(threads=4, rows_per_block=7, row_blocks=5)  # 8 outputs per thread, 5 row blocks
    got = cuda.emulate_sketch(op, X, config=cfg)
    ref = sketch_reference(op, np.ascontiguousarray(X, dtype=np.float64))
    # float phases can flip the sign of values within rounding of zero
    assert np.mean(got.cos_sums != ref.cos_sums) < (0.02 if dtype == np.float32 else 0.005)
    assert rel_err(got.z, ref.z) < 0.05


def test_structured_launch_config():
    for n, p, m, size in [(10, 1, 1, 4), (10**7, 16, 1000, 4), (1000, 4096, 50, 8), (0, 8, 3, 8)]:
        cfg = cuda.structured_launch_config(n, p, m, size)
        assert p * size <= 48 * 1024 and cfg.threads * 16 >= p
        assert cfg.row_blocks * cfg.rows_per_block >= n
    with pytest.raises(BackendUnavailableError, match="p <= 4096"):
        cuda.structured_launch_config(10, 8192, 100, 8)


def test_launch_config_fits_shared_memory():
    for size in (4, 8):
        assert cuda.dense_shared_bytes(size) <= 48 * 1024
    for n, d, m, size in [(10, 1, 1, 4), (10**7, 12, 1000, 4), (1000, 4096, 50, 8), (0, 3, 3, 8), (10**6, 60, 6050, 4)]:
        cfg = cuda.launch_config(n, d, m, size)
        assert cfg.rows_per_block % 32 == 0 and cfg.row_blocks * cfg.rows_per_block >= n
        assert cfg.grid(m)[0] * 128 >= m and cfg.grid(m)[0] * cfg.row_blocks <= max(4096, cfg.grid(m)[0])


def test_cupy_backend_errors_clearly_without_gpu():
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed")
    except ImportError:
        pass
    op = sketchcore.SketchOperator(3, 10, seed=0)
    with pytest.raises(BackendUnavailableError, match="CuPy"):
        op.sketch(np.zeros((4, 3)), backend="cupy")


def _gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="no CUDA GPU / CuPy")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 129, 100_000])
def test_gpu_matches_reference(dtype, n):
    import cupy

    op = sketchcore.SketchOperator(12, 1000, sigma=3.0, dither=True, seed=1)
    X = mixture(n, 12, seed=2, dtype=dtype)
    ref = sketch_reference(op, X.astype(np.float64))
    assert rel_err(op.sketch(cupy.asarray(X)).z, ref.z) < TOL[dtype]  # device input
    assert rel_err(op.sketch(X, backend="cupy").z, ref.z) < TOL[dtype]  # streamed host input
    # several pinned, double-buffered chunks; weights; strided host input
    w = np.random.default_rng(0).uniform(size=n)
    ref_w = sketch_reference(op, X.astype(np.float64), w)
    got = cuda.sketch_cupy(op, X, w, chunk_rows=max(1, n // 3))
    assert rel_err(got.z, ref_w.z) < TOL[dtype] and got.weight == pytest.approx(w.sum())
    np.testing.assert_array_equal(got.lower, X.min(0))


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="no CUDA GPU / CuPy")
def test_gpu_nan_is_reported_with_its_row():
    from sketchcore.exceptions import NonFiniteError

    op = sketchcore.SketchOperator(4, 64, seed=0)
    X = np.ones((1000, 4), dtype=np.float32)
    X[777, 2] = np.nan
    with pytest.raises(NonFiniteError) as info:
        cuda.sketch_cupy(op, X, chunk_rows=300)
    assert info.value.row == 777 and info.value.column == 2


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="no CUDA GPU / CuPy")
def test_gpu_atom_objective_matches_rust():
    from sketchcore import _core

    rng = np.random.default_rng(0)
    op = sketchcore.SketchOperator(12, 3000, sigma=1.5, dither=True, seed=3)
    means, var, alpha = rng.normal(size=(64, 12)), rng.uniform(0.1, 1, (64, 12)), rng.uniform(size=64)
    z = rng.normal(size=3000) + 1j * rng.normal(size=3000)
    args = (op.frequencies, op.dither, means, alpha)
    got = cuda.atom_objective_cupy(*args, z, omega_sq=op.squared_frequencies, variances=var)
    want = _core.atom_objective(*args, z.real.copy(), z.imag.copy(), omega_sq=op.squared_frequencies, variances=var)
    assert got[0] == pytest.approx(want[0], rel=1e-10)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-8, atol=1e-10)


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="no CUDA GPU / CuPy")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_structured_matches_reference(dtype):
    import cupy

    op = sketchcore.SketchOperator(100, 1000, sigma=10.0, kind="structured", dither=True, seed=1)
    X = mixture(3000, 100, seed=2, dtype=dtype)
    ref = sketch_reference(op, X.astype(np.float64))
    assert rel_err(op.sketch(cupy.asarray(X)).z, ref.z) < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gaussian", [False, True])
@pytest.mark.parametrize("k,d,m,threads", [(1, 1, 1, 32), (3, 4, 100, 32), (2, 12, 257, 64), (5, 3, 64, 64)])
def test_emulated_atom_objective_matches_rust_and_numpy(emulator, dtype, gaussian, k, d, m, threads):
    """The CUDA atom/gradient kernel against the Rust kernel and the NumPy
    reference (AtomModel.objective_and_grad_reference)."""
    from sketchcore import _core
    from sketchcore.learning.atoms import AtomModel

    rng = np.random.default_rng(k * 100 + m)
    op = sketchcore.SketchOperator(d, m, sigma=1.5, dither=True, seed=k)
    model = AtomModel(op, gaussian, np.full(d, -3.0), np.full(d, 3.0),
                      var_bounds=(np.full(d, 1e-3), np.full(d, 4.0)) if gaussian else None)
    means = rng.normal(size=(k, d))
    var = rng.uniform(0.05, 0.8, size=(k, d)) if gaussian else None
    alpha = rng.uniform(0.2, 1.0, size=k)
    z = rng.normal(size=m) * 0.3 + 1j * rng.normal(size=m) * 0.3
    theta = np.hstack([means, var]) if gaussian else means
    f_ref, g_ref = model.objective_and_grad_reference(np.concatenate([theta.ravel(), alpha]), z, k)
    omega, xi = op.frequencies.astype(dtype), op.dither.astype(dtype)
    sq = op.squared_frequencies.astype(dtype) if gaussian else None
    f, gm, gv, ga = cuda.emulate_atom_objective(omega, xi, means, alpha, z, omega_sq=sq, variances=var, threads=threads)
    g = np.concatenate([(gm if gv is None else np.hstack([gm, gv])).ravel(), ga])
    tol = 1e-4 if dtype == np.float32 else 1e-11
    assert f == pytest.approx(f_ref, rel=tol)
    np.testing.assert_allclose(g, g_ref, atol=tol * max(1.0, np.abs(g_ref).max()))
    rust = _core.atom_objective(omega, xi, means, alpha, z.real.copy(), z.imag.copy(), omega_sq=sq, variances=var)
    assert f == pytest.approx(rust[0], rel=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu(), reason="no CUDA GPU / CuPy")
def test_gpu_dask_array_of_cupy_chunks():
    import cupy

    da = pytest.importorskip("dask.array")
    op = sketchcore.SketchOperator(12, 500, sigma=3.0, seed=5)
    X = mixture(20_000, 12, seed=6, dtype=np.float32)
    darr = da.from_array(cupy.asarray(X), chunks=(5_000, 12), asarray=False)
    ref = sketch_reference(op, X.astype(np.float64))
    assert rel_err(op.sketch(darr).z, ref.z) < TOL[np.float32]


@pytest.fixture
def emulated_cupy(emulator, monkeypatch):
    """sketchcore.backends.cuda's CuPy entry points backed by the emulation harness."""
    import sys

    import fake_cupy

    cp, cpx, module = fake_cupy.make(cuda._emulator())
    monkeypatch.setattr(cuda, "_cupy", lambda: cp)
    monkeypatch.setattr(cuda, "_module", lambda device_id, fast_math=False: module)
    monkeypatch.setitem(sys.modules, "cupyx", cpx)
    return cp, module


@pytest.mark.parametrize("kind", ["dense", "structured"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", ["host", "device"])
def test_sketch_cupy_host_logic_on_emulated_device(emulated_cupy, kind, dtype, where):
    """sketch_cupy end to end (chunks, pinned double buffers, device-side box,
    weights, reductions) with the kernels running in the emulator."""
    cp, module = emulated_cupy
    op = sketchcore.SketchOperator(6, 40, kind=kind, dither=True, seed=7, sigma=2.0)
    big = mixture(130, 12, seed=8, dtype=dtype)
    X = big[:, ::2]  # strided columns
    w = np.random.default_rng(1).uniform(size=130)
    data = X if where == "host" else cp.asarray(X)[::-1][::-1]
    got = cuda.sketch_cupy(op, data, w, chunk_rows=47)  # 3 chunks, both lanes
    ref = sketch_reference(op, np.ascontiguousarray(X, dtype=np.float64), w)
    assert rel_err(got.z, ref.z) < TOL[dtype]
    assert got.count == 130 and got.weight == pytest.approx(w.sum())
    np.testing.assert_array_equal(got.lower, X.min(0).astype(np.float64))
    np.testing.assert_array_equal(got.upper, X.max(0).astype(np.float64))
    name = f"sketch_{kind}_{'f32' if dtype == np.float32 else 'f64'}"
    assert module.kernels[name].launches == 3 and module.kernels["reduce_partials"].launches == 3
    assert module.kernels[f"data_box_{name[-3:]}"].launches == 3
    empty = cuda.sketch_cupy(op, np.empty((0, 6), dtype=dtype))
    assert empty.weight == 0 and not np.any(empty.cos_sums)


def test_cupy_sketch_keeps_the_rows_the_cpu_backends_keep(emulated_cupy, monkeypatch):
    """A sketch of device data carries the same stored rows as the Rust
    backend's (same seeds; only the chosen rows leave the device), so the
    decoders start from data and adapt to it as after CPU sketching."""
    cp, _ = emulated_cupy
    copied = []
    get = type(cp.asarray(np.zeros(1))).get
    monkeypatch.setattr(type(cp.asarray(np.zeros(1))), "get", lambda a: copied.append(a.shape) or get(a))
    op = sketchcore.SketchOperator(6, 60, seed=3, sigma=2.0)
    X = mixture(1000, 6, seed=4, dtype=np.float32)
    got = op.sketch(cp.asarray(X), backend="cupy")
    want = op.sketch(X)
    assert got.sample_capacity == want.sample_capacity == 400 and got.max_weight == 1.0  # 40 m // d
    np.testing.assert_array_equal(got.samples, want.samples)
    assert copied == [(400, 6)]  # the chosen rows, not the array
    est = sketchcore.CompressiveGMM(3, n_replicates=1, random_state=0).fit_sketch(got)
    assert est.sample_relevance_ is not None


def test_sketch_cupy_reports_first_nan_row(emulated_cupy):
    from sketchcore.exceptions import NonFiniteError

    op = sketchcore.SketchOperator(4, 16, seed=0)
    X = np.ones((100, 4), dtype=np.float32)
    X[61, 3] = np.inf
    X[80, 0] = np.nan
    with pytest.raises(NonFiniteError) as info:
        cuda.sketch_cupy(op, X, chunk_rows=30)
    assert (info.value.row, info.value.column) == (61, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("row,value", [(0, np.nan), (99, np.nan), (64, -np.inf), (5, np.inf)])
def test_emulated_data_box_catches_every_non_finite_value(emulated_cupy, dtype, row, value):
    """The box kernel is the finiteness check: a NaN first or last in its
    lane, followed by smaller or larger values, or an infinity, is found."""
    from sketchcore.exceptions import NonFiniteError

    op = sketchcore.SketchOperator(40, 16, seed=0)  # 40 features: two column blocks
    X = np.random.default_rng(row).normal(size=(100, 40)).astype(dtype)
    X[row, 33] = value
    with pytest.raises(NonFiniteError) as info:
        cuda.sketch_cupy(op, X)
    assert (info.value.row, info.value.column) == (row, 33)
    X[row, 33] = 0.5
    got = cuda.sketch_cupy(op, X)
    np.testing.assert_array_equal(got.lower, X.min(0).astype(np.float64))
    np.testing.assert_array_equal(got.upper, X.max(0).astype(np.float64))


def test_box_launch_config():
    for n, d in [(0, 3), (1, 1), (10**7, 64), (1000, 700)]:
        cfg = cuda.box_launch_config(n, d)
        assert cfg.row_blocks * cfg.rows_per_block >= n and (n == 0 or (cfg.row_blocks - 1) * cfg.rows_per_block < n)


@pytest.mark.parametrize("gaussian", [False, True])
def test_atom_objective_cupy_on_emulated_device(emulated_cupy, gaussian):
    from sketchcore import _core

    rng = np.random.default_rng(4)
    op = sketchcore.SketchOperator(5, 300, sigma=1.5, dither=True, seed=3)
    means, alpha = rng.normal(size=(7, 5)), rng.uniform(size=7)
    var = rng.uniform(0.1, 1, (7, 5)) if gaussian else None
    sq = op.squared_frequencies if gaussian else None
    z = rng.normal(size=300) + 1j * rng.normal(size=300)
    got = cuda.atom_objective_cupy(op.frequencies, op.dither, means, alpha, z, omega_sq=sq, variances=var, threads=64)
    want = _core.atom_objective(op.frequencies, op.dither, means, alpha, z.real.copy(), z.imag.copy(),
                                omega_sq=sq, variances=var)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    for a, b in zip(got[1:], want[1:], strict=True):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_host_constants_match_the_kernel_source():
    """The host's copies of the kernel's compile-time sizes, and the atom
    kernel's shared memory at its largest block."""
    import re

    src = cuda.KERNEL_SOURCE
    c = {k: int(v) for k, v in re.findall(r"#define (SC_[A-Z_]+) (\d+)", src)}
    assert c["SC_GX"] * c["SC_TF"] == cuda._BLOCK_FREQS and c["SC_GY"] * c["SC_TR"] == cuda._TILE_ROWS
    assert c["SC_GX"] * c["SC_GY"] == cuda._DENSE_THREADS and c["SC_KD"] == cuda._STAGED_FEATURES
    assert "#define SC_XS (SC_BR + 4)" in src  # the padding dense_shared_bytes assumes
    assert c["SC_BOX_THREADS"] == cuda._BOX_THREADS
    assert int(re.search(r"#define SC_GRAD_CHUNK (\d+)", src).group(1)) == cuda._GRAD_CHUNK
    assert int(re.search(r"#define SC_MAX_OWN (\d+)", src).group(1)) == cuda._MAX_OWN
    assert cuda._GRAD_CHUNK * 128 * 8 <= 48 * 1024


@pytest.mark.parametrize("threads", [0, 16, 96, 256])
def test_atom_objective_cupy_rejects_block_sizes(threads):
    with pytest.raises(InvalidParameterError, match="threads"):
        cuda.atom_objective_cupy(np.zeros((2, 3)), np.zeros(3), np.zeros((1, 2)), np.ones(1), np.zeros(3),
                                 threads=threads)
