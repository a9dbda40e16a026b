"""Applying a fitted model to audio files: frame labels, component
posteriors, segments and per-file scores (``sketchcore predict``).

The features are computed with the settings the model records (those of the
sketch it was fitted from), block by block as in
:func:`~sketchcore.audio.features.iter_features`, and standardised as the
model was.

Needs the ``audio`` extra (``pip install 'sketchcore[audio]'``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sketchcore.audio.features import FeatureConfig, iter_features, native_rate
from sketchcore.exceptions import InvalidParameterError
from sketchcore.learning.model_file import SavedModel

__all__ = ["FilePrediction", "predict_file", "model_features"]


@dataclasses.dataclass
class FilePrediction:
    """What a model says about one file.

    Attributes
    ----------
    path : str
    labels : ndarray (n_frames,)
        Closest centroid (k-means) or most probable component (GMM) of each frame.
    frame_seconds : float
        Hop between frames; frame ``i`` is centred at ``i * frame_seconds``.
    posteriors : ndarray (n_frames, n_components) or None
        GMM component posteriors, when asked for.
    log_likelihood : float or None
        GMM: mean log-density per frame, in raw feature units (comparable
        between models of the same features: the score of speaker
        verification is the difference of two of them).
    mean_sq_distance : float or None
        k-means: mean squared distance of a frame to its centroid (in the
        model's coordinates).
    """

    path: str
    labels: np.ndarray
    frame_seconds: float
    posteriors: np.ndarray | None = None
    log_likelihood: float | None = None
    mean_sq_distance: float | None = None

    @property
    def n_frames(self) -> int:
        return int(self.labels.shape[0])

    @property
    def seconds(self) -> float:
        return self.n_frames * self.frame_seconds

    def segments(self) -> list[tuple[float, float, int]]:
        """Runs of frames with one label: ``(start, end, label)`` in seconds."""
        labels = self.labels
        if labels.size == 0:
            return []
        cuts = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [labels.size]])
        step = self.frame_seconds
        return [(float(a * step), float(b * step), int(labels[a])) for a, b in zip(starts, ends, strict=True)]


def model_features(model: SavedModel) -> FeatureConfig:
    """The feature settings a model was fitted on (checked against its dimension)."""
    if not model.features:
        raise InvalidParameterError(
            "the model records no audio feature settings (it was not fitted from a sketch of audio); "
            "predict needs them to compute the same features")
    cfg = FeatureConfig.from_dict(model.features)
    if cfg.dim != model.estimator.n_features_in_:
        raise InvalidParameterError(
            f"the model has {model.estimator.n_features_in_} features but its feature settings give {cfg.dim}")
    return cfg


def predict_file(model: SavedModel, path: Any, *, posteriors: bool = False,
                 features: FeatureConfig | None = None) -> FilePrediction:
    """Labels (and GMM posteriors and log-likelihood) of every frame of ``path``.

    Memory: the labels (and posteriors) of the file, and one block of features.

    Raises
    ------
    AudioDecodeError
        The file cannot be decoded.
    """
    cfg = features or model_features(model)
    est = model.estimator
    gmm = model.kind == "gmm"
    labels: list[np.ndarray] = []
    posts: list[np.ndarray] = []
    total, n = 0.0, 0
    for frames in iter_features(path, cfg):
        U = model.prepare(frames)
        if gmm:
            lp = est._estimate_weighted_log_prob(U)
            top = lp.max(axis=1, keepdims=True)
            log_norm = top[:, 0] + np.log(np.exp(lp - top).sum(axis=1))
            labels.append(np.argmax(lp, axis=1))
            total += float(log_norm.sum())
            if posteriors:
                posts.append(np.exp(lp - log_norm[:, None]))
        else:
            d2 = est._sq_distances(U)
            labels.append(np.argmin(d2, axis=1))
            total += float(d2.min(axis=1).sum())
        n += len(U)
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.intp)
    rate = cfg.rate_for(native_rate(path)) if cfg.sample_rate == "native" else int(cfg.sample_rate)
    result = FilePrediction(str(path), all_labels, cfg.hop_length / rate)
    if gmm:
        result.log_likelihood = total / n + model.log_jacobian() if n else float("nan")
        if posteriors:
            result.posteriors = np.concatenate(posts) if posts else np.zeros((0, len(est.weights_)))
    else:
        result.mean_sq_distance = total / n if n else float("nan")
    return result
