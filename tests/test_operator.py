"""Operator generation: reproducibility, laws, fingerprints, pickling."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import integrate, stats

import sketchcore
from sketchcore.core.rng import StableRandom, _log
from sketchcore.exceptions import InvalidParameterError, OperatorMismatchError

# Computed once on x86-64 Linux; any platform must reproduce them bit for bit.
# (The structured one changed when D1 became shared by the blocks.)
GOLDEN = [
    (dict(dim=3, sketch_size=5, seed=0), "789d9bc65ec81d12d50e5660e6526c175fc0a7742458e4a9123787cc910b5d1a"),
    (
        dict(dim=10, sketch_size=100, sigma=2.5, radius="gaussian", dither=True, seed=12345),
        "4fd42e35bfeb4a09c3c864d2a07d29b01afe346198fbb11d27296bdc5a64d9ff",
    ),
    (
        dict(dim=7, sketch_size=33, radius="folded", seed=2**63),
        "39bcad8905f8c8a28d5f2f8b2083008f76999edb352fbfd1df799cb0b4f844a1",
    ),
    (
        dict(dim=20, sketch_size=100, kind="structured", dither=True, quantize=True, seed=5),
        "ecbdd5943393ab08aba88f28c644e331ed5722de7c9a76fee060d171a4506d7d",
    ),
]


@pytest.mark.parametrize("kwargs,fingerprint", GOLDEN)
def test_same_seed_same_bits_everywhere(kwargs, fingerprint):
    assert sketchcore.SketchOperator(**kwargs).fingerprint == fingerprint


def test_reproducible_and_seed_sensitive():
    a = sketchcore.SketchOperator(4, 50, seed=1, dither=True)
    b = sketchcore.SketchOperator(4, 50, seed=1, dither=True)
    c = sketchcore.SketchOperator(4, 50, seed=2, dither=True)
    assert np.array_equal(a.frequencies, b.frequencies) and np.array_equal(a.dither, b.dither)
    assert a == b and a.fingerprint == b.fingerprint
    assert not np.array_equal(a.frequencies, c.frequencies) and a != c
    # Dither does not change the frequencies (drawn after them).
    d = sketchcore.SketchOperator(4, 50, seed=1)
    assert np.array_equal(a.frequencies, d.frequencies) and a.fingerprint != d.fingerprint
    assert np.all(d.dither == 0)
    # Every defining parameter changes the fingerprint.
    for kw in [dict(sigma=2.0), dict(radius="gaussian"), dict(sketch_size=51)]:
        params = dict(dim=4, sketch_size=50, seed=1) | kw
        assert sketchcore.SketchOperator(**params).fingerprint != d.fingerprint


def test_unseeded_operator_records_its_seed():
    op = sketchcore.SketchOperator(3, 10)
    again = sketchcore.SketchOperator(3, 10, seed=op.seed)
    assert again == op


def test_shapes_readonly_and_repr():
    op = sketchcore.SketchOperator(6, 17, sigma=0.5, seed=3, dither=True)
    assert op.frequencies.shape == (6, 17) and op.frequencies.dtype == np.float64
    assert op.dither.shape == (17,)
    assert np.all((op.dither >= 0) & (op.dither < 2 * np.pi))
    with pytest.raises(ValueError):
        op.frequencies[0, 0] = 1.0
    r = repr(op)
    assert "dim=6" in r and "sketch_size=17" in r and "dither=True" in r and op.fingerprint[:12] in r


def test_pickle_is_small_and_exact():
    op = sketchcore.SketchOperator(64, 4096, seed=9, dither=True)
    blob = pickle.dumps(op)
    assert len(blob) < 1000  # parameters, not the 64 x 4096 matrix
    back = pickle.loads(blob)
    assert back == op and np.array_equal(back.frequencies, op.frequencies)


def test_pickle_detects_changed_generation(monkeypatch):
    op = sketchcore.SketchOperator(2, 3, seed=1)
    blob = pickle.dumps(op)
    monkeypatch.setattr(sketchcore.SketchOperator, "_compute_fingerprint", lambda self: "0" * 64)
    with pytest.raises(OperatorMismatchError):
        pickle.loads(blob)


def _radii(op):
    return np.linalg.norm(op.frequencies, axis=0) * op.sigma


@pytest.mark.parametrize("d", [1, 3, 16])
def test_gaussian_radius_is_chi(d):
    op = sketchcore.SketchOperator(d, 20000, radius="gaussian", seed=21, sigma=2.0)
    assert stats.kstest(_radii(op), stats.chi(d).cdf).pvalue > 1e-3


def test_folded_radius_is_half_normal():
    op = sketchcore.SketchOperator(5, 20000, radius="folded", seed=22)
    assert stats.kstest(_radii(op), stats.halfnorm.cdf).pvalue > 1e-3


def test_adapted_radius_law():
    def density(r):
        return np.sqrt(r**2 + r**4 / 4) * np.exp(-(r**2) / 2)

    norm = integrate.quad(density, 0, np.inf)[0]

    def cdf(x):
        x = np.atleast_1d(x)
        grid = np.linspace(0, 12, 24001)
        pdf = density(grid) / norm
        c = np.concatenate([[0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(grid))])
        return np.interp(x, grid, c)

    op = sketchcore.SketchOperator(4, 20000, radius="adapted", seed=23)
    assert stats.kstest(_radii(op), cdf).pvalue > 1e-3


def test_directions_are_uniform():
    d = 5
    op = sketchcore.SketchOperator(d, 20000, seed=24)
    u = op.frequencies / np.linalg.norm(op.frequencies, axis=0)
    # Mean ~ 0, second moment ~ I/d, and each coordinate's law matches.
    np.testing.assert_allclose(u.mean(axis=1), 0, atol=0.03)
    np.testing.assert_allclose(u @ u.T / u.shape[1], np.eye(d) / d, atol=0.01)
    # A coordinate of a uniform unit vector in R^d: (u+1)/2 ~ Beta((d-1)/2, (d-1)/2).
    beta = stats.beta((d - 1) / 2, (d - 1) / 2)
    assert stats.kstest((u[0] + 1) / 2, beta.cdf).pvalue > 1e-3


def test_stable_normals_and_log():
    z = StableRandom(5).normal(50001)
    assert stats.kstest(z, stats.norm.cdf).pvalue > 1e-3
    x = np.concatenate([np.geomspace(1e-300, 1e300, 10001), np.linspace(1e-6, 1, 10001)])
    np.testing.assert_allclose(_log(x), np.log(x), rtol=4e-16, atol=4e-16)
    u = StableRandom(6).uniform(100000)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(dim=0, sketch_size=5),
        dict(dim=3, sketch_size=0),
        dict(dim=-1, sketch_size=5),
        dict(dim=2.5, sketch_size=5),
        dict(dim=True, sketch_size=5),
        dict(dim=3, sketch_size=5, sigma=0.0),
        dict(dim=3, sketch_size=5, sigma=-1.0),
        dict(dim=3, sketch_size=5, sigma=math.nan),
        dict(dim=3, sketch_size=5, sigma=math.inf),
        dict(dim=3, sketch_size=5, sigma="big"),
        dict(dim=3, sketch_size=5, radius="cauchy"),
        dict(dim=3, sketch_size=5, kind="sparse-ish"),
        dict(dim=3, sketch_size=5, kind="sparse", support=0),
        dict(dim=3, sketch_size=5, kind="sparse", support=2.5),
        dict(dim=3, sketch_size=5, kind="dense", support=2),
        dict(dim=3, sketch_size=5, dither="yes"),
        dict(dim=3, sketch_size=5, seed=-1),
        dict(dim=3, sketch_size=5, seed=1.5),
        dict(dim=3, sketch_size=5, quantize=True),
        dict(dim=3, sketch_size=5, dither=True, quantize=1),
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        sketchcore.SketchOperator(**kwargs)


@pytest.mark.parametrize("d", [1, 3, 8, 17, 64, 100, 513])
def test_structured_operator_is_compact_and_consistent(d):
    m = 3 * (1 << (d - 1).bit_length()) // 2 + 1  # not a multiple of the block size
    op = sketchcore.SketchOperator(d, m, kind="structured", radius="gaussian", seed=d, sigma=1.5)
    p = op.block_size
    assert p >= d and p & (p - 1) == 0 and op.signs.shape == (3 * (-(-m // p)), p)
    assert set(np.unique(op.signs)) <= {-1.0, 1.0}
    assert op.nbytes < 8 * (4 * m + 3 * p)  # O(m), never d x m
    # Radii follow the requested law: ||omega_j|| = R_j / sigma.
    omega = op.frequencies
    assert omega.shape == (d, m)
    C = np.random.default_rng(d).normal(size=(4, d))
    np.testing.assert_allclose(op.project(C), C @ omega, rtol=1e-12, atol=1e-12)
    fresh = sketchcore.SketchOperator(d, m, kind="structured", radius="gaussian", seed=d, sigma=1.5)
    np.testing.assert_allclose(fresh.project(C), C @ omega, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(op.squared_frequencies, omega**2)


def test_structured_directions_orthogonal_within_block():
    op = sketchcore.SketchOperator(32, 96, kind="structured", seed=3)
    u = op.frequencies / np.linalg.norm(op.frequencies, axis=0)
    for b in range(3):
        blk = u[:, 32 * b : 32 * (b + 1)]
        np.testing.assert_allclose(blk.T @ blk, np.eye(32), atol=1e-12)


@pytest.mark.parametrize("law,cdf", [("gaussian", stats.chi(12).cdf), ("folded", stats.halfnorm.cdf)])
def test_structured_radius_laws(law, cdf):
    op = sketchcore.SketchOperator(12, 20000, kind="structured", radius=law, seed=31)
    assert stats.kstest(_radii(op), cdf).pvalue > 1e-3


@pytest.mark.parametrize("d, support", [(1, 4), (3, 4), (7, 2), (60, 4), (61, 1), (200, 8)])
def test_sparse_operator_law(d, support):
    m = 4000
    op = sketchcore.SketchOperator(d, m, kind="sparse", support=support, radius="gaussian", sigma=0.5, seed=d)
    w = op.frequencies
    s = min(support, d)
    nonzero = w != 0
    assert w.shape == (d, m) and np.all(nonzero.sum(axis=0) == s)
    # Coordinates chosen uniformly: each is touched by m s / d frequencies on
    # average (binomial counts, 5 standard deviations).
    counts = nonzero.sum(axis=1)
    p = s / d
    assert np.all(np.abs(counts - m * p) <= 5 * np.sqrt(m * p * (1 - p)) + 1e-9)
    # Gaussian radius of `support` normals: non-zero entries are N(0, 1/sigma^2).
    vals = w[nonzero] * op.sigma
    assert abs(vals.var() - 1.0) < 0.1 and abs(vals.mean()) < 0.05
    # Rebuilt from its parameters (as a file does), bit for bit.
    again = sketchcore.SketchOperator.from_params(op.get_params())
    assert again.fingerprint == op.fingerprint and np.array_equal(again.frequencies, w)


@pytest.mark.parametrize("quantize", [False, True])
def test_sparse_operator_sketch_matches_reference(quantize, monkeypatch):
    rng = np.random.default_rng(4)
    big = rng.normal(size=(520, 40))
    X = big[::2, 1::3]  # strided, 260 x 13
    w = rng.uniform(0.0, 2.0, size=260)
    op = sketchcore.SketchOperator(13, 97, kind="sparse", support=3, sigma=0.7, dither=True, quantize=quantize, seed=9)
    phase = X @ op.frequencies + op.dither
    feats = np.sign(np.cos(phase)) + 1j * np.sign(np.sin(phase)) if quantize else np.exp(1j * phase)
    ref = (w[:, None] * feats).sum(axis=0) / w.sum()
    # The Rust backend runs the sparse kernel (s multiply-adds per phase), not the dense one.
    calls = []
    sparse_kernel = sketchcore._core.sketch_sparse
    monkeypatch.setattr(sketchcore._core, "sketch_sparse", lambda *a, **k: calls.append(1) or sparse_kernel(*a, **k))
    for x in (X, X.astype(np.float32), np.asfortranarray(X)):
        tol = 1e-5 if x.dtype == np.float32 else 1e-12
        if quantize and x.dtype == np.float32:
            tol = 2e-2  # a float32 phase near a multiple of pi/2 can flip a sign
        np.testing.assert_allclose(op.sketch(x, w).z, ref, atol=tol)
    assert len(calls) == 3
    index, value, _ = op._arrays_for(np.float64)
    dense = np.zeros((13, 97))
    dense[index.T.astype(np.intp), np.arange(97)] = value.T
    np.testing.assert_array_equal(dense, op.frequencies)
    assert np.all(np.diff(index.astype(np.int64), axis=1) > 0)  # increasing coordinates: the dense kernel's order


def test_sparse_support_key_only_on_sparse_operators():
    # Fingerprints of the other kinds do not change with the sparse kind's existence.
    assert "support" not in sketchcore.SketchOperator(5, 20, seed=1).get_params()
    assert sketchcore.SketchOperator(5, 20, kind="sparse", seed=1).get_params()["support"] == 4
