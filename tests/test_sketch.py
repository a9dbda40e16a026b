"""Sketch objects: merging, empties, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sketchcore
from conftest import mixture, rel_err
from sketchcore import Sketch
from sketchcore.backends.reference import sketch_reference
from sketchcore.exceptions import EmptySketchError, InvalidParameterError, OperatorMismatchError

OP = sketchcore.SketchOperator(5, 64, sigma=2.0, seed=1, dither=True)
DATA = mixture(700, 5, seed=1)
WEIGHTS = np.random.default_rng(1).uniform(0, 3, size=700)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 700), max_size=6), dtype=st.sampled_from([np.float32, np.float64]))
def test_merge_of_split_data_equals_whole(cuts, dtype):
    X = DATA.astype(dtype)
    bounds = [0, *sorted(cuts), 700]
    parts = [OP.sketch(X[a:b], WEIGHTS[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    whole = OP.sketch(X, WEIGHTS)
    merged = Sketch.merge(parts)
    # Exact sums of float64 partials; float32 input regroups the in-tile
    # float32 partial sums (at most 64 rows), hence the looser bound.
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert rel_err(merged.z, whole.z) < tol
    assert merged.count == 700 and merged.weight == pytest.approx(whole.weight, rel=1e-13)
    np.testing.assert_array_equal(merged.lower, whole.lower)
    np.testing.assert_array_equal(merged.upper, whole.upper)
    summed = parts[0]
    for p in parts[1:]:
        summed = summed + p
    assert rel_err(summed.z, whole.z) < tol


def test_empty_sketch_is_identity():
    s = OP.sketch(DATA)
    empty = OP.sketch(np.empty((0, 5)))
    assert empty.weight == 0 and empty.count == 0
    assert empty == Sketch.empty(OP)
    assert s + empty == s and empty + s == s
    assert Sketch.merge([empty, s, empty]) == s
    with pytest.raises(EmptySketchError):
        _ = empty.z


def test_zero_total_weight_is_empty():
    s = OP.sketch(DATA[:3], np.zeros(3))
    assert s.count == 3 and s.weight == 0
    with pytest.raises(EmptySketchError):
        _ = s.z


def test_merge_refuses_other_operator():
    other = sketchcore.SketchOperator(5, 64, sigma=2.0, seed=2, dither=True)
    a, b = OP.sketch(DATA), other.sketch(DATA)
    with pytest.raises(OperatorMismatchError):
        a + b
    with pytest.raises(OperatorMismatchError):
        Sketch.merge([a, b])
    with pytest.raises(InvalidParameterError):
        Sketch.merge([])
    with pytest.raises(TypeError):
        a + 1


def test_normalised_sketch_definition():
    s = OP.sketch(DATA, WEIGHTS)
    z = (WEIGHTS @ np.exp(1j * (DATA @ OP.frequencies + OP.dither))) / WEIGHTS.sum()
    assert rel_err(s.z, z) < 1e-12
    assert np.all(np.abs(s.z) <= 1 + 1e-12)
    lo, hi = s.bounds
    np.testing.assert_array_equal(lo, DATA.min(0))
    np.testing.assert_array_equal(hi, DATA.max(0))


def test_copy_is_independent():
    s = OP.sketch(DATA)
    c = s.copy()
    c.cos_sums[0] += 1
    assert s != c and "count=700" in repr(s)


def test_reference_chunking_does_not_matter():
    a = sketch_reference(OP, DATA, chunk_size=7)
    b = sketch_reference(OP, DATA, chunk_size=10_000)
    assert rel_err(a.z, b.z) < 1e-13


def _rows_of(sample, X):
    """Indices of the rows of X that the sample holds (each must be one)."""
    idx = [int(np.flatnonzero((X == row).all(axis=1))[0]) for row in sample]
    assert len(set(idx)) == len(idx)
    return idx


def test_sketches_keep_a_small_uniform_sample_of_rows_by_default():
    from sketchcore.core.sketch import default_sample_capacity

    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 12)).astype(np.float32)[:, ::1]
    op = sketchcore.SketchOperator(12, 150, sigma=2.0, seed=1)
    assert default_sample_capacity(op) == 500  # 40 m // d
    sk = op.sketch(X)
    assert sk.sample_capacity == 500 and sk.samples.shape == (500, 12) and sk.samples.dtype == np.float64
    idx = _rows_of(sk.samples, X)
    assert idx == sorted(idx)
    # The same rows as a stream from an empty sketch: one rule, whatever the path.
    streamed = Sketch.empty(op).update(X)
    np.testing.assert_array_equal(streamed.samples, sk.samples)
    # Chunked updates and merges keep a sample of the union, deterministically.
    a, b = Sketch.empty(op).update(X[:1000]), Sketch.empty(op).update(X[1000:])
    merged = a + b
    again = Sketch.empty(op).update(X[:1000]) + Sketch.empty(op).update(X[1000:])
    assert len(merged.samples) == 500 and np.array_equal(merged.samples, again.samples)
    first = np.array(_rows_of(merged.samples, X)) < 1000
    assert 60 <= first.sum() <= 140  # about a fifth from the first 1000 rows (sd 8.5)
    # Bounds of the default, and no sample on request.
    assert default_sample_capacity(sketchcore.SketchOperator(4, 10_000, sigma=1.0, seed=0)) == 4096
    assert default_sample_capacity(sketchcore.SketchOperator(100, 205, sigma=1.0, seed=0)) == 82
    assert default_sample_capacity(sketchcore.SketchOperator(100, 40, sigma=1.0, seed=0)) == 16
    assert Sketch.empty(op, sample_capacity=0).update(X).samples is None
    with pytest.raises(InvalidParameterError):
        Sketch.empty(op, sample_capacity="all")
    # Privatised sketches drop it.
    from sketchcore.io.privacy import privatize

    assert privatize(op.sketch(X), epsilon=1.0, seed=0).samples is None


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_a_sketch_made_elsewhere_decodes_as_well_as_fit(seed):
    # fit_sketch of op.sketch(X) (no start rows passed) against fit(X): the
    # sketch's own sample gives the decoder its start points. Measured SSE
    # ratios to KMeans(n_init=3) on seeds 21-23: fit 1.00035 / 1.00026 /
    # 1.00035; from the sketch with its 82-row sample 1.00046 / 1.00023 /
    # 1.00033; without a sample 1.00113 / 1.00085 / 1.00088.
    from sklearn.cluster import KMeans

    from sketchcore.datasets import make_mixture

    X, _ = make_mixture(20000, 16, 8, random_state=seed)
    ref = KMeans(8, n_init=3, random_state=0).fit(X).inertia_
    fitted = sketchcore.CompressiveKMeans(8, n_replicates=1, random_state=0).fit(X)
    decoded = sketchcore.CompressiveKMeans(8, n_replicates=1, random_state=0).fit_sketch(fitted.operator_.sketch(X))

    def ratio(centers):
        return ((X[:, None] - centers[None]) ** 2).sum(axis=2).min(axis=1).sum() / ref

    assert abs(ratio(decoded.cluster_centers_) - ratio(fitted.cluster_centers_)) < 3.5e-4
