"""A private sketch carries nothing exact about the data: only the public
metadata keys survive privatize; its parameters are checked like any other."""

from __future__ import annotations

import numpy as np
import pytest

import sketchcore
from sketchcore import Sketch, privatize
from sketchcore.core.moments import RunningMoments
from sketchcore.exceptions import InvalidParameterError, PrivacyError
from sketchcore.io.privacy import PRIVATE_METADATA_KEYS

OP = sketchcore.SketchOperator(3, 32, sigma=2.0, seed=8, dither=True)
X = np.random.default_rng(8).normal(size=(2000, 3))


def audio_like() -> Sketch:
    """A sketch carrying what the audio pipeline stores: settings, exact moments, files."""
    sk = Sketch.empty(OP, sample_capacity=50).update(X)
    sk.metadata.update({
        "features": {"kind": "mfcc", "n_mfcc": 3},
        "feature_moments": RunningMoments(3).update(X).to_dict(),
        "files_done": ["/data/alice.wav", "/data/bob.wav"],
        "skipped": [["/data/carol.wav", "unreadable"]],
        "site": "hospital A",
    })
    return sk


def test_private_copy_keeps_only_the_public_keys(tmp_path):
    sk = audio_like()
    assert sk.samples is not None and len(sk.samples) == 50
    p = privatize(sk, 1.0, seed=0, public_metadata={"site": "A", "year": 2024})
    assert set(p.metadata) <= set(PRIVATE_METADATA_KEYS)
    assert p.metadata == {"features": {"kind": "mfcc", "n_mfcc": 3}, "public": {"site": "A", "year": 2024}}
    assert p.samples is None and p.max_weight is None
    assert np.all(np.isinf(p.lower)) and np.all(np.isinf(p.upper))
    p.save(tmp_path / "p.sketch")
    back = Sketch.load(tmp_path / "p.sketch")
    assert back.metadata == p.metadata and back.privacy == p.privacy
    # No exact statistic left to standardise with: the caller must pass public ones.
    with pytest.raises(InvalidParameterError, match="mean and std"):
        back.standardized()
    # Nothing about the files or moments remains anywhere in the file's bytes.
    raw = (tmp_path / "p.sketch").read_bytes()
    assert b"alice" not in raw and b"carol" not in raw and b"feature_moments" not in raw and b"hospital" not in raw


def test_private_sketch_cannot_be_given_exact_metadata_when_saved(tmp_path):
    p = privatize(audio_like(), 1.0, seed=0)
    p.metadata["feature_moments"] = audio_like().metadata["feature_moments"]
    with pytest.raises(InvalidParameterError, match="private"):
        p.save(tmp_path / "p.sketch")


def test_weights_above_one_are_refused():
    w = np.zeros(len(X))
    w[:10] = 2.0  # total weight 20 <= 2000 samples: only the largest weight tells
    with pytest.raises(PrivacyError, match="weight"):
        privatize(OP.sketch(X, w), 1.0, seed=0)
    with pytest.raises(PrivacyError, match="weight"):
        privatize(OP.sketch(X, np.full(len(X), 1.5)), 1.0, seed=0)
    # Weights of at most 1 are fine, and so is a sketch merged from such parts.
    ok = OP.sketch(X[:1000], np.full(1000, 0.5)) + OP.sketch(X[1000:])
    assert ok.max_weight == 1.0
    privatize(ok, 1.0, seed=0)
    # A sketch without a recorded largest weight falls back to weight <= count.
    unknown = Sketch(OP, ok.cos_sums, ok.sin_sums, 5000.0, 2000, ok.lower, ok.upper)
    with pytest.raises(PrivacyError):
        privatize(unknown, 1.0, seed=0)


@pytest.mark.parametrize("bounds", [
    (np.full(3, 1.0), np.full(3, -1.0)),
    (np.array([0.0, np.nan, 0.0]), np.ones(3)),
    ("low", "high"),
])
def test_bad_public_bounds_are_refused(bounds):
    with pytest.raises(InvalidParameterError):
        privatize(OP.sketch(X), 1.0, seed=0, bounds=bounds)


def test_budget_types():
    s = OP.sketch(X)
    for bad in (True, np.bool_(True), "1", None, float("nan"), float("inf"), -1.0, 0):
        with pytest.raises(InvalidParameterError):
            privatize(s, bad, seed=0)
    for bad_delta in (True, 1.0, -0.1, float("nan")):
        with pytest.raises(InvalidParameterError):
            privatize(s, 0.5, bad_delta, mechanism="gaussian", seed=0)
    with pytest.raises(InvalidParameterError):
        privatize(s, 1.0, seed=0, mechanism="exponential")
    with pytest.raises(InvalidParameterError):
        privatize(s, 1.0, seed=0, public_weight="yes")
    p = privatize(s, np.float32(1.0), seed=0)  # NumPy scalars are numbers
    assert p.privacy["epsilon"] == 1.0
    g = privatize(s, np.float64(0.5), np.float32(1e-5), mechanism="gaussian", seed=0)
    assert g.privacy["delta"] == pytest.approx(1e-5)
