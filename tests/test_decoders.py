"""Decoder building blocks: merge moves and splitting on hand-made problems.

The sketches are of sampled data; the decoded means are compared with the
true ones (tolerance 0.3 in units of the clusters' unit standard deviation).
"""

from __future__ import annotations

import numpy as np
import pytest

from sketchcore import SketchOperator
from sketchcore.learning.atoms import AtomModel
from sketchcore.learning.merge_moves import merge_moves
from sketchcore.learning.splitting import split_decode

TRUE_MEANS = np.array([[-3.0, 0.0], [3.0, -1.6], [3.0, 1.6]])


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = TRUE_MEANS[rng.integers(3, size=30_000)] + 0.5 * rng.standard_normal((30_000, 2))
    op = SketchOperator(2, 300, sigma=0.6, seed=seed)
    z = op.sketch(x).z
    model = AtomModel(op, True, x.min(0), x.max(0), var_bounds=(np.full(2, 1e-3), np.full(2, 16.0)))
    return model, z, x


def _matched(means):
    """Largest distance from a true mean to its closest decoded mean."""
    return max(np.min(np.linalg.norm(means - t, axis=1)) for t in TRUE_MEANS)


def test_merge_moves_repair_a_split_local_optimum():
    model, z, x = _problem()
    # Two atoms on the left cluster, one atom spanning both right clusters.
    theta = np.array([[-3.3, 0.0, 0.2, 0.25], [-2.7, 0.0, 0.2, 0.25], [3.0, 0.0, 0.25, 2.8]])
    from sketchcore.learning.steps import _nnls_atoms, _refine

    alpha = _nnls_atoms(model.atoms(theta), z)
    theta, alpha, _ = _refine(model, z, theta, alpha, 300)
    before = np.linalg.norm(z - alpha @ model.atoms(theta))
    assert _matched(theta[:, :2]) > 1.0, "the start must miss a cluster"
    rng = np.random.default_rng(0)
    new_theta, new_alpha, moves = merge_moves(z, model, theta, alpha, rng=rng, var0=np.full(2, 0.3),
                                              start_pool=x[:1000])
    after = np.linalg.norm(z - new_alpha @ model.atoms(new_theta))
    assert moves >= 1
    assert after < 0.5 * before
    assert _matched(new_theta[:, :2]) < 0.3
    np.testing.assert_allclose(np.sort(new_alpha / new_alpha.sum()), [1 / 3] * 3, atol=0.03)


def test_merge_moves_keep_a_good_solution():
    model, z, x = _problem(1)
    theta = np.hstack([TRUE_MEANS, np.full((3, 2), 0.25)])
    from sketchcore.learning.steps import _nnls_atoms, _refine

    alpha = _nnls_atoms(model.atoms(theta), z)
    theta, alpha, _ = _refine(model, z, theta, alpha, 300)
    rng = np.random.default_rng(0)
    same_theta, same_alpha, moves = merge_moves(z, model, theta, alpha, rng=rng, var0=np.full(2, 0.3),
                                                start_pool=x[:1000])
    assert moves == 0
    np.testing.assert_array_equal(same_theta, theta)
    np.testing.assert_array_equal(same_alpha, alpha)


def test_merge_moves_need_three_gaussian_atoms():
    model, z, x = _problem()
    theta = np.array([[-3.0, 0.0, 0.25, 0.25], [3.0, 0.0, 0.25, 2.8]])
    alpha = np.array([0.3, 0.6])
    out = merge_moves(z, model, theta, alpha, rng=np.random.default_rng(0))
    assert out[2] == 0 and out[0] is theta


@pytest.mark.parametrize("kind", ["dense", "structured"])
def test_split_decode_recovers_the_clusters(kind):
    # d = 8 (the clusters' means padded with zeros): at d = 2 the structured
    # operator's directions take only a few values.
    d = 8
    means = np.hstack([TRUE_MEANS, np.zeros((3, d - 2))])
    rng = np.random.default_rng(5)
    x = means[rng.integers(3, size=30_000)] + 0.5 * rng.standard_normal((30_000, d))
    op = SketchOperator(d, 600, sigma=0.6, seed=2, kind=kind)
    model = AtomModel(op, True, x.min(0), x.max(0), var_bounds=(np.full(d, 1e-3), np.full(d, 16.0)))
    res = split_decode(op.sketch(x).z, model, 3, rng=np.random.default_rng(0), var0=np.full(d, 0.3),
                       start_pool=x[:1000])
    assert _matched(res.means[:, :2]) < 0.3 and np.abs(res.means[:, 2:]).max() < 0.3
    np.testing.assert_allclose(res.variances, 0.25, rtol=0.3)
    if kind == "structured":
        assert op._frequencies is None, "decoding a structured sketch materialised Omega"


@pytest.mark.parametrize("kind", ["dense", "structured"])
def test_atom_gram_in_chunks(kind):
    d, m = 5, 203
    op = SketchOperator(d, m, sigma=1.0, seed=3, kind=kind, dither=True)
    model = AtomModel(op, True, np.full(d, -2.0), np.full(d, 2.0), var_bounds=(np.full(d, 0.01), np.full(d, 4.0)))
    rng = np.random.default_rng(0)
    theta = np.hstack([rng.normal(size=(6, d)), rng.uniform(0.1, 1.0, size=(6, d))])
    from sketchcore.learning.merge_moves import _atom_gram

    a = model.atoms_reference(theta)
    g = np.abs(a.conj() @ a.T)
    n = np.sqrt(np.diag(g))
    want = g / np.outer(n, n)
    for chunk in (7, 64, 1000):
        np.testing.assert_allclose(_atom_gram(model, theta, chunk=chunk), want, rtol=1e-12, atol=1e-13)
