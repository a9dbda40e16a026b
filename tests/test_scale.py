"""Automatic sigma: recovers the scale of synthetic mixtures, deterministically."""

from __future__ import annotations

import numpy as np
import pytest

import sketchcore
from sketchcore.core.operator import estimate_sigma
from sketchcore.core.sampling import draw_subset
from sketchcore.datasets import make_mixture
from sketchcore.exceptions import EmptySketchError, InvalidParameterError


def unit_mixture(n, d, k=10, scale=1.0, seed=0):
    """The literature's synthetic setting, times ``scale``."""
    return scale * make_mixture(n, d, k, random_state=seed)[0]


@pytest.mark.parametrize("d", [10, 64])
@pytest.mark.parametrize("scale", [0.5, 1.0, 4.0])
def test_recovers_component_scale(d, scale):
    # Measured: the envelope fit lands 25-35% above the component scale (band
    # maxima sit below the envelope when the mixture's phases disagree).
    X = unit_mixture(20000, d, scale=scale, seed=d)
    sigma = estimate_sigma(X, seed=1)
    assert 0.9 * scale <= sigma <= 1.5 * scale


def test_deterministic_and_scale_equivariant():
    X = unit_mixture(10000, 10, seed=3)
    a = estimate_sigma(X, seed=7)
    assert estimate_sigma(X, seed=7) == a
    assert estimate_sigma(3.0 * X, seed=7) == pytest.approx(3.0 * a, rel=1e-5)
    sigma, history = estimate_sigma(X, seed=7, n_iter=4, return_history=True)
    assert len(history) == 4 and history[-1] == sigma
    assert abs(history[-1] - history[-2]) < 0.05 * sigma  # converged


def test_chunked_and_lazy_inputs(tmp_path):
    X = unit_mixture(30000, 10, seed=4)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    assert estimate_sigma(mm, seed=2) == estimate_sigma(X, seed=2)
    chunks = (X[i : i + 777] for i in range(0, 30000, 777))
    s_stream = estimate_sigma(chunks, seed=2)
    assert s_stream == pytest.approx(estimate_sigma(X, seed=2), rel=0.1)


def test_reservoir_is_uniform():
    X = np.arange(10000, dtype=np.float64).reshape(-1, 1)
    counts = np.zeros(10)
    for seed in range(200):
        sub = draw_subset((X[i : i + 333] for i in range(0, 10000, 333)), 100, seed)
        assert sub.shape == (100, 1) and len(np.unique(sub)) == 100
        counts += np.bincount((sub[:, 0] // 1000).astype(int), minlength=10)
    # 20000 draws over 10 equal bins.
    assert np.all(np.abs(counts - 2000) < 200)


def test_operator_from_data():
    X = unit_mixture(5000, 6, seed=5)
    op = sketchcore.SketchOperator.from_data(X, 100, seed=3, dither=True)
    assert op.dim == 6 and op.sketch_size == 100 and op.has_dither
    assert op.sigma == estimate_sigma(X, seed=3)
    fixed = sketchcore.SketchOperator.from_data(X, 100, sigma=2.0, seed=3)
    assert fixed.sigma == 2.0
    with pytest.raises(InvalidParameterError):
        sketchcore.SketchOperator.from_data(X, 100, sigma="guess")


def test_bad_inputs():
    with pytest.raises(EmptySketchError):
        estimate_sigma(iter([]))
    with pytest.raises(InvalidParameterError):
        estimate_sigma(np.ones((10, 2)), n_samples=1)
    with pytest.raises(sketchcore.exceptions.NonFiniteError):
        estimate_sigma(np.full((10, 2), np.nan))
    # Constant data: every |z| is 1, any scale fits; the documented fallback is 1.
    assert estimate_sigma(np.ones((100, 3))) == 1.0


def test_cluster_scale_recovers_component_spread():
    """Many well-separated components: the envelope heuristic sees their
    distances, the within-cluster scale does not (true RMS std 1.04)."""
    from sketchcore import estimate_cluster_scale, estimate_sigma

    rng = np.random.default_rng(0)
    k, d = 64, 12
    means = rng.uniform(-5, 5, size=(k, d))
    std = rng.uniform(0.5, 1.5, size=(k, d))
    labels = rng.integers(k, size=50_000)
    X = means[labels] + std[labels] * rng.standard_normal((50_000, d))
    rms = float(np.sqrt(np.mean(std**2)))
    scale = estimate_cluster_scale(X, k, seed=1)
    assert 0.9 * rms < scale < 1.15 * rms
    assert estimate_cluster_scale(X, k, seed=1) == scale  # deterministic
    assert estimate_sigma(X, seed=1) > 1.8 * rms  # the documented weakness of the envelope


def test_cluster_scale_edge_cases():
    from sketchcore import estimate_cluster_scale
    from sketchcore.exceptions import EmptySketchError, InvalidParameterError, NonFiniteError

    X = np.random.default_rng(1).normal(scale=3.0, size=(4000, 5))
    assert estimate_cluster_scale(X, 1) == pytest.approx(3.0, rel=0.05)  # one cluster: the overall spread
    assert estimate_cluster_scale(np.ones((100, 3)), 4) == 1.0  # constant data
    # More clusters than rows allow: one cluster, the RMS deviation of the rows.
    few = X[:6]
    assert estimate_cluster_scale(few, 50) == pytest.approx(np.sqrt(np.mean((few - few.mean(0)) ** 2)), rel=1e-12)
    with pytest.raises(InvalidParameterError):
        estimate_cluster_scale(X, 0)
    with pytest.raises(EmptySketchError):
        estimate_cluster_scale(np.empty((0, 3)), 2)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(NonFiniteError):
        estimate_cluster_scale(bad, 3)


def test_sigma_strategies_have_names():
    """The named strategies behind each sigma="auto": "envelope" for operators
    built from data, "cluster" for the estimators."""
    X = unit_mixture(5000, 6, k=3, seed=5)
    by_name = sketchcore.SketchOperator.from_data(X, 100, sigma="envelope", seed=3)
    assert by_name.sigma == sketchcore.SketchOperator.from_data(X, 100, seed=3).sigma == estimate_sigma(X, seed=3)
    a = sketchcore.CompressiveKMeans(3, n_replicates=1, random_state=0).fit(X)
    b = sketchcore.CompressiveKMeans(3, sigma="cluster", n_replicates=1, random_state=0).fit(X)
    assert a.operator_.sigma == b.operator_.sigma
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    with pytest.raises(InvalidParameterError):
        sketchcore.SketchOperator.from_data(X, 100, sigma="cluster")
