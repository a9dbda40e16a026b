"""Model files: a fitted :class:`CompressiveKMeans` or :class:`CompressiveGMM`
written to JSON or NPZ and read back as a fitted estimator.

:func:`save_model` writes the estimator's fitted state exactly (float64
values; JSON keeps every digit) in the coordinates it was fitted in, with
what is needed to apply it to new data:

* ``standardization``: per-feature ``mean`` and ``std`` when the model was
  fitted on standardised features (``sketchcore fit`` does so by default);
  :meth:`SavedModel.prepare` applies them to raw frames;
* ``features``: the audio feature settings the frames come from (a
  :class:`~sketchcore.audio.FeatureConfig` as a dict), so that
  ``sketchcore predict`` computes the same features.

For reading by people and other tools, the file also carries the components
in raw feature units (``weights``, ``means``, and for GMMs ``covariances``).

:func:`load_model` returns the fitted estimator; :func:`read_model` returns it
with the standardisation, feature settings and metadata
(:class:`SavedModel`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore.exceptions import InvalidParameterError, ModelFileError, UnsupportedFormatError
from sketchcore.io.sketch_file import atomic_write

__all__ = ["SavedModel", "save_model", "read_model", "load_model", "MODEL_FORMAT", "MODEL_VERSION"]

#: Value of the ``format`` field of every model file.
MODEL_FORMAT = "sketchcore-model"
#: Version of the layout written; files of a later version are refused.
MODEL_VERSION = 1

_KINDS = {"CompressiveKMeans": "kmeans", "CompressiveGMM": "gmm"}


@dataclasses.dataclass
class SavedModel:
    """A model file's content.

    Attributes
    ----------
    estimator : CompressiveKMeans or CompressiveGMM
        Fitted, in the coordinates it was fitted in.
    mean, std : ndarray (n_features,) or None
        Standardisation of the inputs (``(X - mean) / std``), or None.
    features : dict or None
        Audio feature settings (:meth:`FeatureConfig.to_dict`), when known.
    metadata : dict
        Everything else the file records (sketch fingerprint, method...).
    """

    estimator: Any
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    features: dict | None = None
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"kmeans"`` or ``"gmm"``."""
        return _KINDS[type(self.estimator).__name__]

    def prepare(self, X: Any) -> np.ndarray:
        """Raw feature rows to the estimator's coordinates (float64)."""
        X = np.asarray(X, dtype=np.float64)
        if self.mean is None:
            return X
        return (X - self.mean) / self.std

    def log_jacobian(self) -> float:
        """``-sum(log std)``: added to a log-density in the estimator's
        coordinates, it gives the log-density in raw feature units."""
        return 0.0 if self.std is None else -float(np.sum(np.log(self.std)))


def _params(est: Any) -> dict:
    """The constructor parameters that JSON can hold (others take their defaults on reading)."""
    return {k: v for k, v in est.get_params(deep=False).items()
            if v is None or isinstance(v, (bool, int, float, str))}


def save_model(
    estimator: Any,
    path: Any,
    *,
    mean: Any = None,
    std: Any = None,
    features: dict | None = None,
    metadata: dict | None = None,
) -> Path:
    """Writes a fitted estimator (atomically) to ``path``: NPZ when it ends
    with ``.npz``, JSON otherwise.

    Parameters
    ----------
    estimator : fitted CompressiveKMeans or CompressiveGMM
    mean, std : array-like (n_features,), optional
        The standardisation the estimator was fitted under (both or neither).
    features : dict, optional
        Feature settings of the inputs (``FeatureConfig.to_dict()``).
    metadata : dict, optional
        JSON-serialisable extra fields (kept under ``metadata``).
    """
    from sketchcore.learning.estimators import CompressiveGMM, CompressiveKMeans

    if not isinstance(estimator, (CompressiveKMeans, CompressiveGMM)):
        raise InvalidParameterError(
            f"save_model writes CompressiveKMeans or CompressiveGMM, got {type(estimator).__name__}")
    if not hasattr(estimator, "weights_"):
        raise InvalidParameterError(f"{type(estimator).__name__} is not fitted: call fit or fit_sketch first")
    kind = _KINDS[type(estimator).__name__]
    means = np.asarray(estimator.cluster_centers_ if kind == "kmeans" else estimator.means_, dtype=np.float64)
    k, d = means.shape
    if (mean is None) != (std is None):
        raise InvalidParameterError("give both mean and std (the standardisation), or neither")
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if mean.shape != (d,) or std.shape != (d,):
            raise InvalidParameterError(f"mean and std must have shape ({d},)")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise InvalidParameterError("mean must be finite and std finite and positive")
    scale = np.ones(d) if std is None else std
    shift = np.zeros(d) if mean is None else mean
    doc: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "model": kind,
        "n_components": int(k),
        "n_features": int(d),
        # Raw feature units, for reading.
        "weights": estimator.weights_.tolist(),
        "means": (means * scale + shift).tolist(),
        "coordinates": "raw feature units",
        "residual": float(estimator.residual_) if hasattr(estimator, "residual_") else None,
        "method": estimator.method,
        "decoder": getattr(estimator, "decoder_", None),  # the decoder whose mixture was kept
        "standardization": None if mean is None else {"mean": mean.tolist(), "std": std.tolist()},
        "features": features,
        "metadata": metadata or {},
        # Exact state, in the estimator's coordinates.
        "estimator": {
            "class": type(estimator).__name__,
            "params": _params(estimator),
            "weights": estimator.weights_.tolist(),
            "means": means.tolist(),
        },
    }
    if kind == "gmm":
        cov = np.asarray(estimator.covariances_, dtype=np.float64)
        doc["covariances"] = (cov * scale**2).tolist()
        doc["estimator"]["covariances"] = cov.tolist()
    path = Path(path)
    if path.suffix.lower() == ".npz":
        arrays: dict[str, Any] = {"weights": np.asarray(estimator.weights_, dtype=np.float64), "means": means}
        if kind == "gmm":
            arrays["covariances"] = np.asarray(estimator.covariances_, dtype=np.float64)
        if mean is not None:
            arrays.update(standardization_mean=mean, standardization_std=std)
        header = {key: value for key, value in doc.items() if key not in ("weights", "means", "covariances")}
        header["estimator"] = {"class": doc["estimator"]["class"], "params": doc["estimator"]["params"]}
        header["standardization"] = None if mean is None else "arrays"
        arrays["header"] = np.array(json.dumps(header))
        _atomic_write(path, lambda f: np.savez(f, **arrays))
    else:
        text = json.dumps(doc, indent=1, allow_nan=False)
        _atomic_write(path, lambda f: f.write(text.encode()))
    return path


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)

def _array(value: Any, shape: tuple[int, ...], name: str, path: Any) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: {name} is not an array of numbers", path=str(path)) from exc
    if a.shape != shape:
        raise ModelFileError(f"{path}: {name} has shape {a.shape}, expected {shape}", path=str(path))
    if not np.all(np.isfinite(a)):
        raise ModelFileError(f"{path}: {name} contains NaN or infinity", path=str(path))
    return a


def _dict(value: Any) -> dict:
    """A copy of ``value`` if it is a dict, else an empty dict."""
    return dict(value) if isinstance(value, dict) else {}


def _read_document(path: Path) -> tuple[dict, dict]:
    """(header, arrays) of a JSON or NPZ model file."""
    raw = path.read_bytes()  # FileNotFoundError / PermissionError as they are
    if raw[:4] == b"PK\x03\x04":  # a zip archive: NPZ
        import io
        import zipfile

        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelFileError(f"{path}: not a readable model file ({exc})", path=str(path)) from exc
        if "header" not in arrays:
            raise ModelFileError(f"{path}: not a sketchcore model file (no header)", path=str(path))
        try:
            header = json.loads(str(arrays.pop("header")))
        except ValueError as exc:
            raise ModelFileError(f"{path}: corrupt model header ({exc})", path=str(path)) from exc
        if not isinstance(header, dict):
            raise ModelFileError(f"{path}: not a sketchcore model file", path=str(path))
        est = _dict(header.get("estimator"))
        est.update({k: arrays[k] for k in ("weights", "means", "covariances") if k in arrays})
        header["estimator"] = est
        if header.get("standardization") == "arrays":
            header["standardization"] = {"mean": arrays.get("standardization_mean"),
                                         "std": arrays.get("standardization_std")}
        return header, arrays
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"{path}: not a sketchcore model file (neither JSON nor NPZ)", path=str(path)) from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not a sketchcore model file", path=str(path))
    return header, {}


def read_model(path: Any) -> SavedModel:
    """Reads a model file written by :func:`save_model` (or ``sketchcore fit``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ModelFileError
        Not a model file, or inconsistent content.
    UnsupportedFormatError
        Written by a later format version.
    """
    from sketchcore.learning.estimators import CompressiveGMM, CompressiveKMeans

    path = Path(path)
    header, _ = _read_document(path)
    if header.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path}: not a sketchcore model file (no 'format': '{MODEL_FORMAT}')",
                             path=str(path))
    version = header.get("version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: bad model file version {version!r}", path=str(path))
    if version > MODEL_VERSION:
        raise UnsupportedFormatError(
            f"{path}: model file version {version} is newer than this sketchcore reads ({MODEL_VERSION}); "
            "upgrade sketchcore", path=str(path))
    state = header.get("estimator")
    if not isinstance(state, dict) or state.get("class") not in _KINDS:
        raise ModelFileError(f"{path}: the model file names no known estimator", path=str(path))
    cls = CompressiveKMeans if state["class"] == "CompressiveKMeans" else CompressiveGMM
    means = np.asarray(state.get("means", []), dtype=object)
    if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
        raise ModelFileError(f"{path}: means must be a non-empty (components, features) table", path=str(path))
    k, d = means.shape
    means = _array(state["means"], (k, d), "means", path)
    weights = _array(state.get("weights"), (k,), "weights", path)
    if np.any(weights < 0) or not weights.sum() > 0:
        raise ModelFileError(f"{path}: weights must be non-negative and not all zero", path=str(path))
    params = _dict(state.get("params"))
    known = cls().get_params(deep=False)
    try:
        est = cls(**{name: value for name, value in params.items() if name in known})
    except TypeError as exc:
        raise ModelFileError(f"{path}: bad estimator parameters ({exc})", path=str(path)) from exc
    if cls is CompressiveKMeans:
        est.n_clusters = k
        est.cluster_centers_ = means
    else:
        est.n_components = k
        cov = _array(state.get("covariances"), (k, d), "covariances", path)
        if np.any(cov <= 0):
            raise ModelFileError(f"{path}: covariances must be positive", path=str(path))
        est.means_ = means
        est.covariances_ = cov
        est.precisions_cholesky_ = 1.0 / np.sqrt(cov)
        est.converged_ = True
    est.weights_ = weights
    residual = header.get("residual")
    est.residual_ = float(residual) if isinstance(residual, (int, float)) else math.nan
    decoder = header.get("decoder")
    if decoder in ("clompr", "split", "batch"):  # absent from files written before it was recorded
        est.decoder_ = decoder
    est.n_features_in_ = int(d)
    mean = std = None
    stdz = header.get("standardization")
    if stdz is not None:
        if not isinstance(stdz, dict):
            raise ModelFileError(f"{path}: bad standardization record", path=str(path))
        mean = _array(stdz.get("mean"), (d,), "standardization mean", path)
        std = _array(stdz.get("std"), (d,), "standardization std", path)
        if np.any(std <= 0):
            raise ModelFileError(f"{path}: standardization std must be positive", path=str(path))
    features = header.get("features")
    return SavedModel(est, mean, std, features if isinstance(features, dict) else None, _dict(header.get("metadata")))


def load_model(path: Any) -> Any:
    """The fitted :class:`CompressiveKMeans` or :class:`CompressiveGMM` of a
    model file (JSON or NPZ, from :func:`save_model` or ``sketchcore fit``).

    The estimator works in the coordinates it was fitted in: predictions and
    scores equal those of the estimator that wrote the file. A model fitted
    on standardised features (the default of ``sketchcore fit``) expects
    standardised inputs: use :func:`read_model` and :meth:`SavedModel.prepare`
    to apply the standardisation recorded in the file.
    """
    return read_model(path).estimator
