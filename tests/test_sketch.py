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
