"""Differentially private sketches.

:func:`privatize` adds noise once to the final sums of a sketch. The
guarantee, with its assumptions:

* Neighbouring data sets differ by adding or removing **one sample**, and
  every sample weight is at most 1 (unit weights by default).
* One sample changes the cosine and sine sums by a vector whose norms are at
  most: L1 ``sqrt(2) m`` and L2 ``sqrt(m)`` (``|cos t| + |sin t| <= sqrt(2)``,
  cos^2 + sin^2 = 1); for quantized sketches L1 ``2 m`` and L2 ``sqrt(2 m)``.
* ``mechanism="laplace"``: i.i.d. Laplace noise of scale L1 / epsilon_sums on
  each of the 2m sums gives epsilon-DP. ``"gaussian"``: i.i.d. normal noise of
  standard deviation sqrt(2 ln(1.25 / delta)) L2 / epsilon_sums gives
  (epsilon, delta)-DP for epsilon <= 1 (the classical analysis).
* The total weight (number of samples) is either declared public
  (``public_weight=True``: all of the budget goes to the sums), or noised with
  Laplace noise of scale 1 / epsilon_weight, where the budget is split
  ``epsilon_weight = weight_share * epsilon`` (default 10%; sequential
  composition, delta all to the sums).
* The data box (``lower``/``upper``) would leak extreme samples: it is
  replaced by a box given by the caller (``bounds``) or by infinities. The
  sample of rows some sketches carry (decoder starting points) is dropped.
* Metadata: only ``features`` (the feature settings) and ``public`` (what
  the caller declares public) are kept (:data:`PRIVATE_METADATA_KEYS`). The
  exact per-feature moments and the lists of files an audio sketch carries
  are dropped, so a private sketch is decoded in raw feature units unless
  the caller standardises with public statistics.

A private sketch can be merged only with other private sketches of disjoint
data (parallel composition: the guarantee is the weakest of the parts'), and
cannot be updated.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from sketchcore.core.sketch import Sketch
from sketchcore.exceptions import InvalidParameterError, PrivacyError

__all__ = ["privatize", "noise_scale", "PRIVATE_METADATA_KEYS"]

#: The only metadata a private sketch carries: ``features`` (the feature
#: settings: how the data was measured, nothing about the data) and
#: ``public`` (what the caller of :func:`privatize` declares public).
PRIVATE_METADATA_KEYS = ("features", "public")


def noise_scale(sketch_size: int, epsilon: float, delta: float, mechanism: str, quantized: bool) -> float:
    """Per-coordinate noise scale on the sums: Laplace b, or Gaussian sigma."""
    if mechanism == "laplace":
        l1 = 2.0 * sketch_size if quantized else math.sqrt(2.0) * sketch_size
        return l1 / epsilon
    if mechanism == "gaussian":
        l2 = math.sqrt(2.0 * sketch_size) if quantized else math.sqrt(sketch_size)
        return math.sqrt(2.0 * math.log(1.25 / delta)) * l2 / epsilon
    raise InvalidParameterError(f"mechanism must be 'laplace' or 'gaussian', got {mechanism!r}")


def privatize(
    sketch: Sketch,
    epsilon: float,
    delta: float = 0.0,
    *,
    mechanism: str = "laplace",
    public_weight: bool = False,
    weight_share: float = 0.1,
    bounds: tuple[Any, Any] | None = None,
    seed: int | None = None,
    public_metadata: dict | None = None,
) -> Sketch:
    """A differentially private copy of ``sketch`` (see the module docstring).

    The copy keeps the noisy sums and weight, the operator and forgetting
    factor, the public ``bounds`` and, of the metadata, only the keys of
    :data:`PRIVATE_METADATA_KEYS`: ``features`` (copied: the feature
    settings) and ``public`` (``public_metadata``). Everything else is
    dropped: exact feature moments, lists of files, the sample of rows, the
    data box, the largest weight.

    Parameters
    ----------
    sketch : Sketch
        A raw (not yet private) sketch whose sample weights are at most 1.
    epsilon : float
        Total privacy budget (> 0; <= 1 for the Gaussian mechanism).
    delta : float, default=0
        Required (0 < delta < 1) for ``mechanism="gaussian"``.
    mechanism : {"laplace", "gaussian"}
    public_weight : bool, default=False
        Treat the total weight as public (not noised).
    weight_share : float, default=0.1
        Fraction of epsilon spent on the weight when it is noised.
    bounds : (lower, upper), optional
        Public data box stored in the private sketch (the real one is dropped):
        two arrays of shape (dim,) without NaN, lower <= upper.
    seed : int, optional
        Seed of the noise (for tests; leave None in production).
    public_metadata : dict, optional
        JSON information the caller declares public (a site name, a date...),
        stored under ``metadata["public"]``.

    Raises
    ------
    InvalidParameterError
        A parameter out of range.
    PrivacyError
        The sketch is already private, or holds a sample weight above 1 (the
        guarantee assumes at most 1; sketches that do not record their largest
        weight must have total weight <= sample count).
    """
    if not isinstance(sketch, Sketch):
        raise InvalidParameterError(f"expected a Sketch, got {type(sketch).__name__}")
    if sketch.privacy:
        raise PrivacyError("the sketch is already private")
    epsilon = _real("epsilon", epsilon)
    delta = _real("delta", delta)
    weight_share = _real("weight_share", weight_share)
    if not epsilon > 0:
        raise InvalidParameterError(f"epsilon must be a positive number, got {epsilon!r}")
    if not isinstance(mechanism, str) or mechanism not in ("laplace", "gaussian"):
        raise InvalidParameterError(f"mechanism must be 'laplace' or 'gaussian', got {mechanism!r}")
    if not 0 <= delta < 1:
        raise InvalidParameterError(f"delta must be in [0, 1), got {delta!r}")
    if mechanism == "gaussian" and not (0 < delta < 1 and epsilon <= 1):
        raise InvalidParameterError("the Gaussian mechanism needs 0 < delta < 1 and epsilon <= 1")
    if not 0 < weight_share < 1:
        raise InvalidParameterError(f"weight_share must be in (0, 1), got {weight_share!r}")
    if not isinstance(public_weight, (bool, np.bool_)):
        raise InvalidParameterError(f"public_weight must be True or False, got {public_weight!r}")
    if public_metadata is not None and not isinstance(public_metadata, dict):
        raise InvalidParameterError(f"public_metadata must be a dict, got {type(public_metadata).__name__}")
    if sketch.max_weight is not None and sketch.max_weight > 1.0:
        raise PrivacyError(
            f"a sample weight is {sketch.max_weight:g}: the privacy guarantee assumes weights of at most 1"
        )
    if sketch.weight > sketch.count * (1.0 + 1e-12):
        raise PrivacyError(
            f"the total weight {sketch.weight:g} exceeds the {sketch.count} samples: some weight is above 1, "
            "which the privacy guarantee excludes"
        )
    d = sketch.dim
    lower, upper = (np.full(d, -np.inf), np.full(d, np.inf)) if bounds is None else _check_bounds(bounds, d)
    eps_weight = 0.0 if public_weight else weight_share * epsilon
    eps_sums = epsilon - eps_weight
    m = sketch.sketch_size
    scale = noise_scale(m, eps_sums, delta, mechanism, sketch.operator.quantize)
    rng = np.random.default_rng(seed)
    if mechanism == "laplace":
        noise = rng.laplace(0.0, scale, size=(2, m))
    else:
        noise = rng.normal(0.0, scale, size=(2, m))
    weight = sketch.weight
    if not public_weight:
        weight = max(weight + rng.laplace(0.0, 1.0 / eps_weight), 1.0)
    privacy = {
        "mechanism": mechanism,
        "epsilon": float(epsilon),
        "delta": float(delta),
        "epsilon_sums": float(eps_sums),
        "epsilon_weight": float(eps_weight),
        "public_weight": bool(public_weight),
        "noise_scale": float(scale),
        "neighbouring": "add/remove one sample, weights <= 1",
    }
    metadata = {}
    if "features" in sketch.metadata:
        metadata["features"] = sketch.metadata["features"]
    if public_metadata is not None:
        metadata["public"] = dict(public_metadata)
    # The sample count would reveal the weight: it is released only as public.
    count = sketch.count if public_weight else int(round(weight))
    return Sketch(
        sketch.operator,
        sketch.cos_sums + noise[0],
        sketch.sin_sums + noise[1],
        weight,
        count,
        lower,
        upper,
        decay=sketch.decay,
        privacy=privacy,
        metadata=metadata,
    )


def _real(name: str, value: Any) -> float:
    """A finite real number (Python or NumPy; not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite, got {value!r}")
    return value


def _check_bounds(bounds: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """The public box: two float arrays of shape (d,), no NaN, lower <= upper."""
    try:
        lower, upper = bounds
        lower = np.array(lower, dtype=np.float64).reshape(-1) if np.ndim(lower) else np.full(d, float(lower))
        upper = np.array(upper, dtype=np.float64).reshape(-1) if np.ndim(upper) else np.full(d, float(upper))
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"bounds must be a pair (lower, upper) of arrays of {d} numbers: {exc}") from None
    if lower.shape != (d,) or upper.shape != (d,):
        raise InvalidParameterError(f"bounds must be two arrays of shape ({d},), got {lower.shape} and {upper.shape}")
    if np.any(np.isnan(lower)) or np.any(np.isnan(upper)):
        raise InvalidParameterError("bounds must not contain NaN")
    if np.any(lower > upper):
        j = int(np.argmax(lower > upper))
        raise InvalidParameterError(f"bounds must have lower <= upper (feature {j}: {lower[j]} > {upper[j]})")
    return lower, upper
