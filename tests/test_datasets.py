"""sketchcore.datasets.make_mixture."""

from __future__ import annotations

import numpy as np
import pytest

from sketchcore.datasets import make_mixture
from sketchcore.exceptions import InvalidParameterError


def test_literature_setting():
    X, y, centers = make_mixture(50_000, 8, 5, random_state=1, return_centers=True)
    assert X.shape == (50_000, 8) and y.shape == (50_000,) and centers.shape == (5, 8)
    # Means drawn with standard deviation 1.5 K^(1/d); unit spread around them.
    np.testing.assert_allclose((X - centers[y]).std(axis=0), 1.0, rtol=0.03)
    np.testing.assert_allclose(np.bincount(y) / len(y), 0.2, atol=0.01)
    again = make_mixture(50_000, 8, 5, random_state=1)
    np.testing.assert_array_equal(again[0], X)


def test_weights_and_anisotropic_spread():
    std = np.array([[0.5, 2.0], [1.0, 1.0], [3.0, 0.2]])
    X, y, centers = make_mixture(90_000, 2, 3, cluster_std=std, weights=[1, 2, 6], random_state=2, return_centers=True)
    np.testing.assert_allclose(np.bincount(y) / len(y), [1 / 9, 2 / 9, 6 / 9], atol=0.01)
    for k in range(3):
        np.testing.assert_allclose((X[y == k] - centers[k]).std(axis=0), std[k], rtol=0.05)
    X1, y1, c1 = make_mixture(20_000, 3, 2, cluster_std=[0.5, 2.0], random_state=3, return_centers=True)
    np.testing.assert_allclose([(X1[y1 == k] - c1[k]).std() for k in range(2)], [0.5, 2.0], rtol=0.05)


def test_bad_parameters():
    with pytest.raises(InvalidParameterError):
        make_mixture(10, 0, 2)
    with pytest.raises(InvalidParameterError):
        make_mixture(10, 2, 2, weights=[1, -1])
    with pytest.raises(InvalidParameterError):
        make_mixture(10, 2, 2, cluster_std=np.ones((3, 2)))


@pytest.mark.parametrize("kind", ["scalar", "per-component", "per-feature"])
def test_make_mixture_equals_the_whole_array_formula(kind):
    # The generator builds X in place, one component at a time; the values are
    # those of means[labels] + std * noise from the same stream, bit for bit.
    n, d, k = 1001, 7, 4
    std = {"scalar": 0.8, "per-component": np.array([0.5, 1.0, 1.5, 2.0]),
           "per-feature": np.linspace(0.5, 2.0, k * d).reshape(k, d)}[kind]
    X, labels, centers = make_mixture(n, d, k, cluster_std=std, random_state=11, return_centers=True)
    rng = np.random.default_rng(11)
    means = rng.normal(scale=1.5 * k ** (1 / d), size=(k, d))
    want_labels = rng.integers(k, size=n)
    noise = rng.normal(size=(n, d))
    s = np.asarray(std)
    spread = float(s) if s.ndim == 0 else (s[want_labels, None] if s.ndim == 1 else s[want_labels])
    np.testing.assert_array_equal(centers, means)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(X, means[want_labels] + spread * noise)
