"""scikit-learn estimators learned from a sketch: CompressiveKMeans, CompressiveGMM."""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, ClusterMixin, DensityMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from sketchcore.core.operator import OPERATOR_KINDS, SketchOperator, estimate_sigma
from sketchcore.core.sampling import sample_windows
from sketchcore.core.sketch import BACKENDS, Sketch
from sketchcore.core.validation import is_dask_array
from sketchcore.exceptions import DataShapeError, DimensionMismatchError, EmptySketchError, InvalidParameterError
from sketchcore.learning.atoms import AtomModel
from sketchcore.learning.batch import batch_clompr
from sketchcore.learning.clompr import clompr
from sketchcore.learning.cluster_scale import estimate_cluster_scale
from sketchcore.learning.mixture_kmeans import kmeans_of_mixture, stratified_mixture_sample
from sketchcore.learning.sample_adaptation import (
    ADAPTATIONS,
    MAP_ADAPTATIONS,
    MIN_GAIN,
    Adaptation,
    Mixture,
    adapt,
    choose_adaptations,
    choose_density_weight,
    lloyd_on_union,
)
from sketchcore.learning.splitting import split_decode
from sketchcore.learning.steps import DecodeResult

__all__ = ["CompressiveKMeans", "CompressiveGMM", "default_sketch_size"]

logger = logging.getLogger(__name__)


def _closing(bar: Any) -> contextlib.AbstractContextManager:
    """Closes a progress bar (None: nothing) when the block ends, even on error."""
    return contextlib.closing(bar) if bar is not None else contextlib.nullcontext()


#: Stored rows a decoded mixture is adapted to, at most (a uniform subset
#: beyond; the cross-validation costs about 1 s at K = 64, d = 60 on 1000 rows).
MAX_ADAPTATION_ROWS = 4096
#: Rows of the data kept (when fitting from data) as starting points of new atoms.
_START_POOL = 1000
#: With method="auto", CL-OMPR up to this many components, hierarchical splitting above
#: (with merge moves, splitting matched CL-OMPR at K = 16 and 32 in half the time). Below,
#: splitting did better on real MFCC frames (K = 10) and worse on the demo's synthetic
#: corpus (K = 8; docs/performance.rst): there, when the sketch carries rows to
#: cross-validate on, the replicates alternate between the two decoders and the
#: adapted mixture with the better held-out likelihood on the rows is kept.
AUTO_SPLIT_THRESHOLD = 15

#: sigma="auto" with sparse operators: this fraction of the within-cluster scale.
#: Measured on MFCC frames of speech and music (d = 60, K = 10, 54k frames):
#: factors 0.55-0.6 beat 0.75 and 1.0 on both the held-out log-likelihood
#: (by 1-2 nats per frame) and the k-means SSE (by 0.2-1%); the synthetic
#: mixtures' quality is the same at 0.6 and 1.
SPARSE_SIGMA_FACTOR = 0.6

#: Rows read (as random windows) to estimate sigma and pick starting points.
_SAMPLE_ROWS = 5000

#: Draws of the density model that enter Lloyd's algorithm with the stored
#: rows (CompressiveKMeans; at most ``density_samples``).
UNION_DRAWS = 20_000



def default_sketch_size(n_components: int, dim: int, covariance: bool = False) -> int:
    """Default m: 5 K d for k-means, 5 (2d + 1) K for diagonal GMMs, at least 100.

    ``python examples/quality_check.py kmeans --ratios ...`` measures the
    quality against m.
    """
    m = 5 * (2 * dim + 1) * n_components if covariance else 5 * n_components * dim
    return max(100, int(m))


class _CompressiveMixture(BaseEstimator):
    """Shared machinery: operator, sketch, CL-OMPR with replicates."""

    _parameter_constraints: dict = {
        "sketch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "sigma": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto", "cluster", "envelope"})],
        "operator": [StrOptions(set(OPERATOR_KINDS)), SketchOperator],
        "n_replicates": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [StrOptions({"auto", "clompr", "batch", "split"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_starts": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "backend": [StrOptions(set(BACKENDS))],
        "var_floor": [Interval(numbers.Real, 0.0, 1.0, closed="left")],
        "sample_relevance": [Interval(numbers.Real, 0.0, None, closed="left"), StrOptions({"cv"}), None],
        "verbose": ["verbose"],
    }
    _gaussian_output = False
    #: Adaptations to the stored rows that cross-validation chooses from.
    _adaptations = ADAPTATIONS

    # -- operator and sketch ---------------------------------------------------

    def _n_components(self, op: Any = None) -> int:
        """Components of the mixture decoded from a sketch made with ``op``."""
        raise NotImplementedError

    def _default_sketch_size(self, dim: int) -> int:
        return default_sketch_size(self._n_components(), dim, self._gaussian_output)

    def _make_operator(self, sample: np.ndarray, rng: np.random.RandomState) -> SketchOperator:
        """Operator for data represented by ``sample`` (sigma is estimated on it)."""
        d = sample.shape[1]
        if isinstance(self.operator, SketchOperator):
            if self.operator.dim != d:
                raise DimensionMismatchError(f"the operator has dim {self.operator.dim}, the data {d}")
            return self.operator
        m = self.sketch_size or self._default_sketch_size(d)
        seed = int(rng.randint(0, 2**31 - 1))
        if self.sigma in ("auto", "cluster"):
            sigma = estimate_cluster_scale(sample, self._n_components(), seed=seed)
            if self.operator == "sparse":
                sigma *= SPARSE_SIGMA_FACTOR
        elif self.sigma == "envelope":
            sigma = estimate_sigma(sample, seed=seed, return_history=False)
        else:
            sigma = float(self.sigma)
        return SketchOperator(d, m, sigma=sigma, kind=self.operator, seed=seed)

    def _fit_data(self, X: Any, sample_weight: Any) -> np.ndarray | None:
        if is_dask_array(X):
            self._fit_dask(X, sample_weight)
            return None
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        rng = check_random_state(self.random_state)
        sample = sample_windows(X, _SAMPLE_ROWS, seed=int(rng.randint(0, 2**31 - 1)))
        op = self._make_operator(sample, rng)
        t0 = time.perf_counter()
        sketch = op.sketch(X, sample_weight, backend=self.backend)
        self.sketch_time_ = time.perf_counter() - t0
        if sample_weight is not None and sketch.weight > 0:
            # Starting points drawn in proportion to the weights.
            p = np.asarray(sample_weight, dtype=np.float64) / sketch.weight
            size = min(_START_POOL, int(np.count_nonzero(p)))
            pool = X[np.sort(rng.choice(X.shape[0], size=size, replace=False, p=p / p.sum()))]
        else:
            pool = self._pool(sample, rng)
        self._decode(sketch, None, np.asarray(pool, dtype=np.float64), rng)
        return X

    @staticmethod
    def _pool(sample: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """Starting points of new atoms: a random subset of the sample rows."""
        return sample[np.sort(rng.choice(len(sample), size=min(len(sample), _START_POOL), replace=False))]

    def _fit_dask(self, X: Any, sample_weight: Any) -> None:
        """One pass over a dask array; sigma and start points come from a cheap
        sample of a few random blocks, never a second pass."""
        if X.ndim != 2:
            raise DataShapeError(f"X must be 2-D, got shape {X.shape}")
        rng = check_random_state(self.random_state)
        sample = sample_windows(X, _SAMPLE_ROWS, seed=int(rng.randint(0, 2**31 - 1)))
        self.n_features_in_ = X.shape[1]
        op = self._make_operator(sample, rng)
        t0 = time.perf_counter()
        sketch = op.sketch(X, sample_weight)
        self.sketch_time_ = time.perf_counter() - t0
        self._decode(sketch, None, np.asarray(self._pool(sample, rng), dtype=np.float64), rng)
        return None

    def _check_components(self, k: int, sketch: Sketch) -> None:
        """K must be identifiable from the sketch: at most one component per
        sample, and no more unknowns (K (d + 1) for k-means, K (2 d + 1) for
        diagonal GMMs) than the 2 m real numbers of the sketch."""
        if k > sketch.count:
            raise InvalidParameterError(
                f"{k} components from a sketch of {sketch.count} samples: at most one component per sample"
            )
        op = sketch.operator
        per = 2 * op.dim + 1 if self._gaussian_output else op.dim + 1
        if k * per > 2 * op.sketch_size:
            raise InvalidParameterError(
                f"{k} components have {k * per} unknowns, more than the {2 * op.sketch_size} numbers of a sketch "
                f"of size {op.sketch_size}: use at most {2 * op.sketch_size // per} components, or a larger sketch"
            )

    def _decode(
        self,
        sketch: Sketch,
        bounds: tuple[np.ndarray, np.ndarray] | None,
        pool: np.ndarray | None,
        rng: np.random.RandomState,
    ) -> None:
        if not isinstance(sketch, Sketch):
            raise InvalidParameterError(f"expected a sketchcore.Sketch, got {type(sketch).__name__}")
        if not sketch.weight > 0:
            raise EmptySketchError("cannot decode: the total sample weight is zero (empty sketch)")
        op = sketch.operator
        lower, upper = sketch.bounds if bounds is None else (np.asarray(b, dtype=np.float64) for b in bounds)
        if lower.shape != (op.dim,) or upper.shape != (op.dim,):
            raise DimensionMismatchError(f"bounds must be two arrays of shape ({op.dim},)")
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper)) and np.all(lower <= upper)):
            raise InvalidParameterError("bounds must be finite with lower <= upper")
        half_span2 = ((upper - lower) / 2.0) ** 2
        if pool is None and sketch.samples is not None and len(sketch.samples):
            pool = sketch.samples
        floor = self._var_floor(half_span2, pool)
        var_upper = np.maximum(half_span2, floor)
        var_lower = np.minimum(floor, var_upper)
        model = AtomModel(op, True, lower, upper, var_bounds=(var_lower, var_upper))
        var0 = np.clip(np.full(op.dim, op.sigma**2), var_lower, var_upper)
        z = sketch.z
        k = self._n_components(op)
        self._check_components(k, sketch)
        t0 = time.perf_counter()

        method = self.method
        if method == "auto":
            method = "clompr" if k <= AUTO_SPLIT_THRESHOLD else "split"
        # Below the threshold neither decoder was better everywhere: with rows
        # to cross-validate on, odd replicates split and the adapted mixtures
        # of both decoders' best replicates are compared on the rows.
        both = (self.method == "auto" and method == "clompr" and self.n_replicates > 1
                and self.sample_relevance == "cv" and self._rows_usable(sketch))
        # CL-OMPR reports 2K steps per replicate; the other decoders a number
        # that depends on the data (the bar then counts without a total).
        per_replicate = (2 * k if k > 1 else 1) if method == "clompr" and not both else None
        bar = self._progress_bar(None if per_replicate is None else per_replicate * self.n_replicates)

        def report(it: int, residual: float) -> None:
            logger.info("  step %d: relative residual %.4g", it + 1, residual)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(residual=f"{residual:.4f}", refresh=False)

        decoders: dict[str, Callable[..., DecodeResult]] = {
            "clompr": clompr,
            "split": functools.partial(split_decode, n_polish=self._split_polish_rounds(op)),
            "batch": batch_clompr,
        }
        best_of: dict[str, DecodeResult] = {}  # each decoder's smallest residual
        # Small dense products: BLAS threads only add overhead here.
        with threadpool_limits(1, "blas"), _closing(bar):
            for rep in range(self.n_replicates):
                name = "split" if both and rep % 2 == 1 else method
                if self.verbose:
                    logger.info("%s: replicate %d/%d (%s)", type(self).__name__, rep + 1, self.n_replicates, name)
                result = decoders[name](
                    z,
                    model,
                    k,
                    rng=np.random.default_rng(rng.randint(0, 2**31 - 1)),
                    var0=var0,
                    start_pool=pool,
                    n_starts=self.n_starts,
                    max_iter=self.max_iter,
                    callback=report if self.verbose else None,
                )
                if name not in best_of or result.residual < best_of[name].residual:
                    best_of[name] = result
        self.decode_time_ = time.perf_counter() - t0
        self.sketch_ = sketch
        self.operator_ = op
        self.n_features_in_ = op.dim
        self.sample_relevance_: float | None = None
        self.feature_variance_scale_: np.ndarray | None = None
        self.adaptation_: Adaptation | None = None
        # Without a comparison on rows, the smallest residual wins.
        self.decoder_, best = min(best_of.items(), key=lambda item: item[1].residual)
        self.residual_ = best.residual
        self.n_iter_ = best.n_atoms_iterations
        if best.variances is not None:
            best = self._adapt_to_sample(best_of if both else {self.decoder_: best}, sketch,
                                         (var_lower, var_upper), rng)
        self._set_result(best, rng)

    def _split_polish_rounds(self, op: Any) -> int | None:
        """Replacement rounds after hierarchical splitting (None: the
        decoder's default, ceil(log2 K) + 2)."""
        return None

    def _rows_usable(self, sketch: Sketch) -> bool:
        """Whether the model is adapted to the sketch's stored rows: not with
        ``sample_relevance=None``, when there are none, or when the sketch is
        weighted or decayed (its sample is then not a uniform sample of what
        it describes)."""
        rows = sketch.samples
        uniform = (sketch.decay == 1.0 and sketch.max_weight is not None
                   and abs(sketch.max_weight * sketch.count - sketch.weight) <= 1e-9 * sketch.weight)
        return self.sample_relevance is not None and rows is not None and len(rows) > 0 and uniform

    def _sample_rows(self, sketch: Sketch, gen: np.random.Generator) -> np.ndarray | None:
        """The sketch's stored rows the model may be adapted to (None when
        :meth:`_rows_usable` says no); at most MAX_ADAPTATION_ROWS of them (a
        uniform subset)."""
        rows = sketch.samples
        if rows is None or not self._rows_usable(sketch):
            return None
        if len(rows) > MAX_ADAPTATION_ROWS:
            # Bounded work (50 MAP fits in the cross-validation) whatever the sample capacity.
            rows = rows[np.sort(gen.choice(len(rows), MAX_ADAPTATION_ROWS, replace=False))]
        return rows

    def _adapt_to_sample(self, results: dict[str, DecodeResult], sketch: Sketch,
                         var_bounds: tuple[np.ndarray, np.ndarray], rng: np.random.RandomState) -> DecodeResult:
        """The decoded mixture adapted to the rows the sketch carries
        (:mod:`~sketchcore.learning.sample_adaptation`); sets ``adaptation_``,
        ``sample_relevance_`` (inf: no MAP step) and ``feature_variance_scale_``
        when an adaptation is made (the caller sets them to None beforehand).

        ``results`` maps decoders to their mixtures. With more than one, they
        are cross-validated on the same folds and the one whose chosen
        adaptation scores best is kept, CL-OMPR's unless another gains
        MIN_GAIN nats per held-out row; ``decoder_``, ``residual_`` and
        ``n_iter_`` then follow it.

        Only an unweighted, undecayed sketch's sample is a uniform sample of
        what the sketch describes; other sketches keep the decoded mixture.
        """
        gen = np.random.default_rng(rng.randint(0, 2**31 - 1))
        rows = self._sample_rows(sketch, gen)
        name = self.decoder_
        if rows is None:
            return results[name]
        priors: dict[str, Mixture] = {}
        for n, r in results.items():
            assert r.variances is not None  # Gaussian atoms
            priors[n] = Mixture(r.weights, r.means, r.variances)
        if self.sample_relevance == "cv":
            candidates = self._adaptations
            found = dict(zip(priors, choose_adaptations(list(priors.values()), rows, var_bounds, gen,
                                                        candidates=candidates), strict=True))
            score = {n: float(scores[candidates.index(chosen)]) for n, (chosen, scores) in found.items()}
            best = max(score, key=lambda n: score[n] + (MIN_GAIN if n == "clompr" else 0.0))
            if np.isfinite(score[best]):
                name = best
            adaptation = found[name][0]
        else:
            adaptation = Adaptation(False, float(self.sample_relevance))
        adapted, scale = adapt(priors[name], rows, adaptation, var_bounds, gen)
        result = results[name]
        self.decoder_, self.residual_, self.n_iter_ = name, result.residual, result.n_atoms_iterations
        self.adaptation_ = adaptation
        self.sample_relevance_ = float(adaptation.relevance)
        self.feature_variance_scale_ = scale if adaptation.scale else None
        return DecodeResult(adapted.means, adapted.variances, adapted.weights, result.residual,
                            result.n_atoms_iterations)

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None, *, decode: bool = True):
        """Adds a chunk of data to the sketch; decodes the model unless ``decode=False``.

        The first call fixes the operator (``sigma="auto"`` is estimated from
        that first chunk). Memory is bounded by the chunk; on a long stream,
        pass ``decode=False`` for all chunks but the last (or call
        ``fit_sketch(self.sketch_)`` whenever a model is needed).

        Returns
        -------
        self
        """
        first = not hasattr(self, "_stream_rng")
        if first:
            self._validate_params()
            X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
            self._stream_rng = check_random_state(self.random_state)
            op = self._make_operator(sample_windows(X, _SAMPLE_ROWS, seed=int(self._stream_rng.randint(0, 2**31 - 1))),
                                     self._stream_rng)
            self.sketch_ = Sketch.empty(op)
            self._stream_pool = np.empty((0, X.shape[1]))
        else:
            X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        self.sketch_.update(X, sample_weight, n_threads=None)
        room = _START_POOL - len(self._stream_pool)
        if room > 0 and X.shape[0]:
            rows = self._stream_rng.choice(X.shape[0], size=min(room, X.shape[0]), replace=False)
            self._stream_pool = np.vstack([self._stream_pool, np.asarray(X[np.sort(rows)], dtype=np.float64)])
        if decode:
            self.sketch_time_ = 0.0
            self._decode(self.sketch_, None, self._stream_pool, self._stream_rng)
        return self

    def _progress_bar(self, total: int | None) -> Any:
        """A tqdm progress bar of the decoder's steps on standard error when
        ``verbose`` is set (decodes at audio dimensions take seconds to
        minutes), else None."""
        if not self.verbose:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"{type(self).__name__} decode", unit="step", file=sys.stderr)

    def _var_floor(self, half_span2: np.ndarray, pool: np.ndarray | None) -> np.ndarray:
        """Smallest variance of a component, per feature: ``var_floor`` times the
        feature's variance (estimated on the sample rows, or as a sixteenth of
        the squared half-width of the data box when the sketch carries none),
        and never below 1e-4 of the squared half-width.

        Speech toolkits floor diagonal-GMM variances likewise (a fraction of
        each feature's global variance): a component that is very narrow in
        one feature costs held-out frames tens of nats each.
        """
        if pool is not None and len(pool) > 1:
            feature_var = np.var(np.asarray(pool, dtype=np.float64), axis=0)
        else:
            feature_var = half_span2 / 16.0
        return np.maximum(np.maximum(self.var_floor * feature_var, 1e-4 * half_span2), 1e-9)

    def fit_sketch(self, sketch: Sketch, bounds: tuple[np.ndarray, np.ndarray] | None = None):
        """Learns the model from a sketch made elsewhere.

        Parameters
        ----------
        sketch : Sketch
            Any sketch (merged, streamed, loaded); its operator is used.
        bounds : (lower, upper), optional
            Box for the means; default: the data box stored in the sketch.

        Returns
        -------
        self
        """
        self._validate_params()
        rng = check_random_state(self.random_state)
        self.sketch_time_ = 0.0
        self._decode(sketch, bounds, None, rng)
        return self

    def _set_result(self, result: DecodeResult, rng: np.random.RandomState) -> None:
        raise NotImplementedError

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False).astype(np.float64, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class CompressiveKMeans(ClusterMixin, TransformerMixin, _CompressiveMixture):
    """k-means centroids learned from a sketch of the data (compressive k-means).

    The data are sketched in one pass (Rust SIMD kernel), then a diagonal
    Gaussian mixture with ``density_components`` components (default twice
    the number of clusters) is decoded from the sketch, as
    :class:`CompressiveGMM` does, and the centroids are those that minimise
    the k-means objective under that density: Lloyd's algorithm on a
    Monte Carlo sample of the mixture
    (:func:`~sketchcore.learning.mixture_kmeans.kmeans_of_mixture`). No
    second pass over the data is made.

    Why: the k-means objective is an expectation under the data's
    distribution, which the decoded mixture estimates. On well-separated
    Gaussian clusters the means of a K-component fit are the centroids
    already, but real features (overlapping, skewed, heavy-tailed clusters)
    have mixture means that are not partition centroids; a finer density
    model with 2K components, partitioned by Lloyd's algorithm, follows
    Lloyd's k-means on the data. ``density_components=None`` keeps the
    means of a K-component Gaussian fit as centroids (one mixture component
    per cluster; cheaper, the same as :class:`CompressiveGMM`'s means).

    Parameters
    ----------
    n_clusters : int, default=8
    sketch_size : int, optional
        Frequencies m. Default :func:`default_sketch_size` with covariances,
        5 (2d + 1) K (>= 100); 5 K d with ``density_components=None``.
    sigma : float, "cluster", "envelope" or "auto", default="auto"
        Frequency scale. "cluster": the RMS within-cluster standard
        deviation of a k-means run on the rows sampled for start points
        (:func:`~sketchcore.learning.cluster_scale.estimate_cluster_scale`);
        "envelope": the published envelope heuristic
        (:func:`~sketchcore.estimate_sigma`), which overestimates the scale
        when many components are well separated. "auto" is "cluster".
    operator : {"sparse", "dense", "structured"} or SketchOperator, default="sparse"
        Frequency law (:class:`~sketchcore.SketchOperator`'s ``kind``).
        "sparse": each frequency touches 4 random coordinates, so the sketch
        measures low-dimensional marginals and the per-feature spreads of
        the Gaussian atoms are identifiable; "dense": directions uniform on
        the sphere, which in tens of dimensions see mostly the average
        spread over all features (measured on real MFCC frames, d = 60:
        decoded variances collapse to the floor in some features and the
        held-out log-likelihood falls tens of nats per frame below EM's);
        "structured": fast Walsh-Hadamard blocks, O(m log d) per sample.
    n_replicates : int, default=2
        Independent decoding runs; the smallest residual wins (see
        ``method`` for the comparison of two decoders on the stored rows).
        Two rather than CompressiveGMM's three: with the stored rows'
        Lloyd step after them, a third replicate of the density model
        changed neither the SSE nor the ARI on real MFCC frames (d = 60,
        five sets, three random states on each of two splits: mean SSE
        ratio 1.0106 and 1.0104 with three, 1.0114 and 1.0088 with two;
        mean ARI 0.001 above KMeans's with either) and took 1.3 of the 5 s
        of a fit.
    method : {"auto", "clompr", "split", "batch"}, default="auto"
        "clompr": CL-OMPR (2K greedy steps, each with a joint refinement).
        "split": compressive hierarchical splitting (log2 K levels of
        splits proposed from the sketch's sample points, one joint
        refinement, batched replacement rounds, merge moves). "batch":
        CL-OMPR adding atoms in doubling batches. "auto": "clompr" up to
        :data:`AUTO_SPLIT_THRESHOLD` (15) components, "split" above; up to
        15, when the model is adapted by cross-validation to rows the sketch
        carries (``sample_relevance="cv"``, ``n_replicates`` >= 2), the
        replicates alternate between "clompr" and "split" and the adapted
        mixture with the better cross-validated log-likelihood on those rows
        is kept ("clompr" unless "split" gains 0.1 nats per row; neither
        decoder was the better on every data set measured).
        "clompr" and "split" reach the same quality on the test suite's
        mixtures, "split" in about half the time from K = 16 on; "batch" is
        faster still but less reliable at large K
        (``python examples/benchmark_large_k.py`` compares them).
    max_iter : int, default=300
        L-BFGS-B iterations per optimisation (CL-OMPR's search for a new
        atom stops at 120).
    n_starts : int, default=64
        Candidate starting points scored for each new atom.
    random_state : int, RandomState or None
    backend : {"auto", "rust", "numpy"}, default="auto"
    compute_labels : bool, default=True
        After ``fit(X)``, label the training data (one extra pass of
        nearest-centroid assignment, as scikit-learn's ``labels_``). Set False
        to keep fitting to a single pass over the data.
    density_components : int, "auto" or None, default="auto"
        Components of the density model decoded from the sketch ("auto":
        2 n_clusters, or n_clusters and None's behaviour for quantized
        operators); None: the centroids are the means of an
        n_clusters-component Gaussian fit.
    density_samples : int, default=50000
        Points drawn from the density model for Lloyd's algorithm (memory
        8 density_samples d bytes; the centroids' Monte Carlo error is
        about the within-cluster deviation / sqrt(density_samples / K)).
    var_floor : float, default=1e-3
        Smallest variance of a decoded component in each feature, as a
        fraction of that feature's variance (estimated on the rows sampled
        for start points, or the sketch's stored sample).
    sample_relevance : float, "cv" or None, default="cv"
        Adaptation of the decoded density model to the uniform sample of
        rows the sketch carries (``Sketch.samples``; 40 m // d rows by
        default, about 400 per component at the default sketch size; at
        most 4096 of them, a uniform subset, are used)
        (:mod:`~sketchcore.learning.sample_adaptation`). "cv" chooses by
        5-fold cross-validation on the sample among: the decoded mixture;
        per-feature variance scales shared by all components
        (CompressiveGMM only: for k-means they made the SSE worse); a
        maximum a posteriori estimate with the decoded mixture as prior, in
        which a component given n_k rows moves n_k / (n_k + relevance) of
        the way to their statistics (relevance 64, 16, 4 or 1); and
        (CompressiveGMM only) a mixture fitted to the sample alone, EM from
        a k-means start. The decoded mixture is kept unless a candidate
        gains at least 0.1 nats per held-out row. CompressiveKMeans then
        runs Lloyd's algorithm from its centroids on the sample together
        with draws of the density model weighing 2, 1, 1/2 or 1/4 times as
        much as the rows, or on the rows alone, whichever cross-validation
        finds lowers the held-out SSE most, if by at least 0.2%
        (``density_weight_``). A number is a fixed relevance (MAP only,
        plus the Lloyd step for k-means); None never adapts (the model is
        the sketch's alone). No adaptation is made when the sketch carries no sample
        (``privatize``, ``sample_capacity=0``) or when its rows were
        weighted or decayed (its sample is then not a sample of what it
        describes). On real MFCC frames (d = 60, K = 10) the decoded
        mixture often sits in a worse basin of the likelihood than EM from
        a k-means start on the sample, and the refit is what
        cross-validation picks on two of five sets.
    verbose : int, default=0
        Non-zero: a progress bar of the decoder's steps (tqdm, on standard
        error) and an INFO record of the ``sketchcore.learning.estimators``
        logger for each replicate and step.

    Attributes
    ----------
    cluster_centers_ : ndarray (n_clusters, n_features)
    labels_ : ndarray (n_samples,)
        Only after ``fit(X)`` with ``compute_labels=True``.
    weights_ : ndarray (n_clusters,)
        Fraction of the data's weight in each cluster.
    density_weights_, density_means_, density_covariances_ : ndarray
        The decoded density model (absent with ``density_components=None``).
    sketch_ : Sketch
    operator_ : SketchOperator
    residual_ : float
        ||z - A alpha|| / ||z|| of the kept replicate (before adaptation).
    decoder_ : str
        The decoder of the kept replicate: "clompr", "split" or "batch".
    sample_relevance_ : float or None
        Relevance of the MAP step the density model was adapted with (inf:
        none; 0 for a refit; None: no adaptation).
    feature_variance_scale_ : ndarray (n_features,) or None
        Per-feature variance scales applied to the decoded mixture, or None.
    adaptation_ : Adaptation or None
        What the adaptation did (``scale``, ``relevance``, ``refit``: the
        mixture was fitted to the sample alone), or None.
    density_weight_ : float or None
        Weight of the density model's draws, relative to all the stored
        rows together, in the Lloyd step that ended the fit (inf: the
        density model's centroids were kept; 0: the rows alone; None: no
        rows to use).
    refined_on_sample_ : bool
        Whether the stored rows moved the centroids (``density_weight_``
        finite).
    n_features_in_ : int
    sketch_time_, decode_time_ : float
        Seconds spent sketching and decoding.
    """

    _parameter_constraints = {
        **_CompressiveMixture._parameter_constraints,
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "compute_labels": ["boolean"],
        "density_components": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "density_samples": [Interval(numbers.Integral, 1000, 10**7, closed="both")],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        sketch_size: int | None = None,
        sigma: float | str = "auto",
        operator: str | SketchOperator = "sparse",
        n_replicates: int = 2,
        method: str = "auto",
        max_iter: int = 300,
        n_starts: int = 64,
        random_state: Any = None,
        backend: str = "auto",
        compute_labels: bool = True,
        density_components: int | str | None = "auto",
        density_samples: int = 50_000,
        var_floor: float = 1e-3,
        sample_relevance: float | str | None = "cv",
        verbose: int = 0,
    ) -> None:
        self.n_clusters = n_clusters
        self.var_floor = var_floor
        self.sample_relevance = sample_relevance
        self.density_components = density_components
        self.density_samples = density_samples
        self.method = method
        self.compute_labels = compute_labels
        self.sketch_size = sketch_size
        self.sigma = sigma
        self.operator = operator
        self.n_replicates = n_replicates
        self.max_iter = max_iter
        self.n_starts = n_starts
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose

    def _n_components(self, op: Any = None) -> int:
        if self._density_model(op) is None:
            return int(self.n_clusters)
        k = self.density_components
        if k == "auto":
            return 2 * int(self.n_clusters)
        assert isinstance(k, numbers.Integral)  # validated: an integer >= 1
        return int(k)

    def _density_model(self, op: Any = None) -> int | str | None:
        """``density_components``, with "auto" read as None for quantized
        operators: the first-harmonic atoms leave the quantizer's higher
        harmonics in the residual, which extra components fit with broad
        components of small weight that would pull the centroids."""
        if op is None and isinstance(self.operator, SketchOperator):
            op = self.operator
        if self.density_components == "auto" and getattr(op, "quantize", False):
            return None
        return self.density_components

    def _default_sketch_size(self, dim: int) -> int:
        return default_sketch_size(self.n_clusters, dim, covariance=self._density_model() is not None)

    # The density model feeds Lloyd's algorithm, not a likelihood: the
    # per-feature variance scales, chosen on held-out likelihood, made the
    # SSE worse on 6 and better on 3 of 10 runs on MFCC frames (d = 60, five
    # sets, random_state 0 and 1; median 1.038 -> 1.038 and 1.040 -> 1.045).
    # Without the MAP step, Lloyd on the stored rows and the density's draws
    # (cross-validation then unbiased) gave lower SSE still (mean over six
    # random_states 1.019-1.025 x the best KMeans(n_init=3), against
    # 1.022-1.029 with it) but partitions further from the labels (mean ARI
    # 0.006-0.017 lower on four of five MFCC sets, d = 60), so the
    # MAP step stays and the Lloyd step follows it where cross-validation
    # asks (conservatively: the MAP step has seen the held-out rows).
    _adaptations = MAP_ADAPTATIONS

    def _split_polish_rounds(self, op: Any) -> int | None:
        # The density model only feeds Lloyd's algorithm: three replacement
        # rounds instead of seven (2K = 20 components) decode music, drums,
        # instruments, speech and mixed MFCC frames (d = 60) in 3.8 s instead
        # of 5.6 s, with SSE ratios to KMeans(n_init=3) of 1.028-1.048
        # instead of 1.034-1.050 (random_state 0; 1.030-1.055 instead of
        # 1.027-1.058 with random_state 1).
        return 3 if self._density_model(op) is not None else None

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> CompressiveKMeans:
        """Sketches X in one pass, then decodes the centroids.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : ignored
        sample_weight : array-like (n_samples,), optional
        """
        X = self._fit_data(X, sample_weight)
        # Labels need a pass over the data: done for in-memory arrays only.
        if self.compute_labels and X is not None:
            self.labels_ = self._labels(X)
        return self

    def _labels(self, X: np.ndarray, chunk: int = 65536) -> np.ndarray:
        return np.concatenate(
            [np.argmin(self._sq_distances(np.asarray(X[i : i + chunk], np.float64)), axis=1)
             for i in range(0, X.shape[0], chunk)]
        ) if X.shape[0] else np.zeros(0, dtype=np.intp)

    def _set_result(self, result: DecodeResult, rng: np.random.RandomState) -> None:
        if self._density_model(self.operator_) is None:
            self.cluster_centers_ = result.means
            self.weights_ = result.weights
        else:
            assert result.variances is not None  # Gaussian atoms
            self.density_weights_ = result.weights
            self.density_means_ = result.means
            self.density_covariances_ = result.variances
            self.cluster_centers_, self.weights_ = kmeans_of_mixture(
                result.means, result.variances, result.weights, int(self.n_clusters),
                n_samples=int(self.density_samples), seed=int(rng.randint(0, 2**31 - 1)),
            )
        # Lloyd's algorithm on the stored rows and draws of the density
        # model, from its centroids, weighted as cross-validation says.
        self.refined_on_sample_ = False
        self.density_weight_: float | None = None
        gen = np.random.default_rng(rng.randint(0, 2**31 - 1))
        rows = self._sample_rows(self.sketch_, gen)
        if rows is not None:
            draws = None
            if result.variances is not None:
                draws = stratified_mixture_sample(result.means, result.variances, result.weights,
                                                  min(int(self.density_samples), UNION_DRAWS), gen)
            self.density_weight_, _ = choose_density_weight(self.cluster_centers_, rows, draws, gen)
            if np.isfinite(self.density_weight_):
                self.cluster_centers_, self.weights_ = lloyd_on_union(self.cluster_centers_, rows, draws,
                                                                      self.density_weight_)
                self.refined_on_sample_ = True

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances to the centroids, shape (n_samples, n_clusters)."""
        X = self._check_X(X)
        return np.sqrt(self._sq_distances(X))

    def _sq_distances(self, X: np.ndarray) -> np.ndarray:
        c = self.cluster_centers_
        d2 = (X * X).sum(1)[:, None] - 2.0 * X @ c.T + (c * c).sum(1)[None, :]
        return np.maximum(d2, 0.0)

    def predict(self, X: Any) -> np.ndarray:
        """Index of the closest centroid."""
        return np.argmin(self._sq_distances(self._check_X(X)), axis=1)

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> np.ndarray:
        """Fits, then returns the closest centroid of each training sample."""
        self.fit(X, sample_weight=sample_weight)
        return self.labels_ if hasattr(self, "labels_") else self.predict(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Opposite of the sum of squared distances to the closest centroid (SSE)."""
        d2 = self._sq_distances(self._check_X(X)).min(axis=1)
        w = np.ones_like(d2) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return -float(w @ d2)


class CompressiveGMM(DensityMixin, _CompressiveMixture):
    """Diagonal Gaussian mixture learned from a sketch of the data.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"diag"}, default="diag"
    sketch_size : int, optional
        Default 5 (2d + 1) K (at least 100).
    reg_covar : float, default=1e-6
        Added to every variance (as in scikit-learn's GaussianMixture).
    var_floor : float, default=1e-3
        Smallest decoded variance in each feature, as a fraction of that
        feature's variance (see :class:`CompressiveKMeans`).
    sample_relevance : float, "cv" or None, default="cv"
        Adaptation of the decoded mixture to the sketch's stored rows (see
        :class:`CompressiveKMeans`).
    sigma, operator, n_replicates, max_iter, n_starts, random_state, backend, verbose
        As in :class:`CompressiveKMeans`.

    Attributes
    ----------
    means_ : ndarray (n_components, n_features)
    covariances_ : ndarray (n_components, n_features)
        Diagonal variances.
    weights_ : ndarray (n_components,)
    precisions_cholesky_ : ndarray (n_components, n_features)
    sketch_, operator_, residual_, decoder_, n_features_in_, sketch_time_, decode_time_
        As in :class:`CompressiveKMeans`.
    sample_relevance_, feature_variance_scale_, adaptation_
        The adaptation to the sketch's stored rows, as in :class:`CompressiveKMeans`.
    """

    _parameter_constraints = {
        **_CompressiveMixture._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "covariance_type": [StrOptions({"diag"})],
        "reg_covar": [Interval(numbers.Real, 0.0, None, closed="left")],
    }
    _gaussian_output = True

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "diag",
        sketch_size: int | None = None,
        sigma: float | str = "auto",
        operator: str | SketchOperator = "sparse",
        reg_covar: float = 1e-6,
        var_floor: float = 1e-3,
        sample_relevance: float | str | None = "cv",
        n_replicates: int = 3,
        method: str = "auto",
        max_iter: int = 300,
        n_starts: int = 64,
        random_state: Any = None,
        backend: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.n_components = n_components
        self.sample_relevance = sample_relevance
        self.covariance_type = covariance_type
        self.sketch_size = sketch_size
        self.sigma = sigma
        self.operator = operator
        self.reg_covar = reg_covar
        self.var_floor = var_floor
        self.n_replicates = n_replicates
        self.method = method
        self.max_iter = max_iter
        self.n_starts = n_starts
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose

    def _n_components(self, op: Any = None) -> int:
        return self.n_components

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> CompressiveGMM:
        """Sketches X in one pass, then decodes the mixture."""
        self._fit_data(X, sample_weight)
        return self

    def _set_result(self, result: DecodeResult, rng: np.random.RandomState) -> None:
        assert result.variances is not None  # Gaussian atoms
        self.means_ = result.means
        self.covariances_ = result.variances + self.reg_covar
        self.weights_ = result.weights
        self.precisions_cholesky_ = 1.0 / np.sqrt(self.covariances_)
        self.converged_ = True

    def _estimate_weighted_log_prob(self, X: np.ndarray) -> np.ndarray:
        prec = self.precisions_cholesky_  # (K, d)
        d = X.shape[1]
        log_det = np.sum(np.log(prec), axis=1)
        mp = self.means_ * prec
        sq = (X * X) @ (prec**2).T - 2.0 * X @ (mp * prec).T + np.sum(mp**2, axis=1)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights_)
        return -0.5 * (d * np.log(2 * np.pi) + sq) + log_det + log_w

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-density of each sample."""
        return logsumexp(self._estimate_weighted_log_prob(self._check_X(X)), axis=1)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per sample."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probability of each component, shape (n_samples, n_components)."""
        lp = self._estimate_weighted_log_prob(self._check_X(X))
        return np.exp(lp - logsumexp(lp, axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component."""
        return np.argmax(self._estimate_weighted_log_prob(self._check_X(X)), axis=1)

    def _n_parameters(self) -> int:
        k, d = self.means_.shape
        return int(k * d * 2 + k - 1)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on X (lower is better)."""
        X = self._check_X(X)
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X: Any) -> float:
        """Akaike information criterion on X (lower is better)."""
        X = self._check_X(X)
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draws samples; returns (X, component labels)."""
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise InvalidParameterError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_ / self.weights_.sum())
        X = np.vstack([
            rng.normal(self.means_[k], np.sqrt(self.covariances_[k]), size=(c, self.means_.shape[1]))
            for k, c in enumerate(counts)
        ])
        y = np.repeat(np.arange(len(counts)), counts)
        return X, y
