"""CompressiveKMeans / CompressiveGMM: scikit-learn conventions, quality bars
against scikit-learn on the literature's synthetic mixtures, degenerate cases."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import sketchcore
from sketchcore import CompressiveGMM, CompressiveKMeans
from sketchcore.datasets import make_mixture
from sketchcore.exceptions import DimensionMismatchError, EmptySketchError, InvalidParameterError

# Each skip, with its reason: the random subset used to estimate sigma and to
# pick starting points is drawn over rows, so repeating a row is not
# bit-identical to weighting it (the sketch itself is: see test_kernel.py).
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": "sigma subset and start points are drawn over rows",
}


@parametrize_with_checks(
    [CompressiveKMeans(n_clusters=3, n_replicates=1, random_state=0),
     CompressiveGMM(n_components=2, n_replicates=1, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def literature_mixture(n, d, k=10, seed=0):
    """K unit Gaussians, means N(0, (1.5 K^(1/d))^2 I): (X, labels, means)."""
    return make_mixture(n, d, k, random_state=seed, return_centers=True)


def sse(X, centers):
    d2 = (X * X).sum(1)[:, None] - 2 * X @ centers.T + (centers * centers).sum(1)
    return float(np.maximum(d2, 0).min(1).sum())


#: Seeds of the quality bars: not the seeds 0-4 the decoders' constants (split
#: jitter, merge-move thresholds, duplicate rule) were tuned on.
QUALITY_SEEDS = tuple(range(100, 105))


def anisotropic_mixture(n, d, k=10, seed=0):
    """A second generator: weights unequal (up to 4x) and per-feature standard
    deviations uniform in [0.5, 1.5], means as in the literature's setting."""
    rng = np.random.default_rng([seed, 7])
    std = rng.uniform(0.5, 1.5, size=(k, d))
    weights = rng.uniform(0.25, 1.0, size=k)
    return make_mixture(n, d, k, cluster_std=std, weights=weights, random_state=seed, return_centers=True)


GENERATORS = {"literature": literature_mixture, "anisotropic": anisotropic_mixture}


@functools.cache
def _kmeans_reference(kind, d, seed):
    """(inertia, labels) of scikit-learn's KMeans (n_init=10), shared by both decoders."""
    X, _, _ = GENERATORS[kind](100_000, d, seed=seed)
    ref = KMeans(10, init="k-means++", n_init=10, random_state=seed).fit(X)
    return ref.inertia_, ref.labels_


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, d, method, seeds, worst_ratio",
    [
        # Worst SSE ratio to KMeans over the seeds, measured: 1.000122 and
        # 1.000089 (literature, d = 10), 1.000151 and 1.000080 (anisotropic),
        # 1.000096 (d = 64, splitting, 3 seeds; CL-OMPR there: 1.000108, five
        # minutes); the bars allow 3x the gap.
        ("literature", 10, "clompr", QUALITY_SEEDS, 1.0004),
        ("literature", 10, "split", QUALITY_SEEDS, 1.0003),
        ("anisotropic", 10, "clompr", QUALITY_SEEDS, 1.00045),
        ("anisotropic", 10, "split", QUALITY_SEEDS, 1.00024),
        ("literature", 64, "split", QUALITY_SEEDS[:3], 1.0003),
    ],
    ids=["literature-d10-clompr", "literature-d10-split", "anisotropic-d10-clompr", "anisotropic-d10-split",
         "literature-d64-split"],
)
def test_kmeans_quality_bar(kind, d, method, seeds, worst_ratio):
    ratios, ari_gaps = [], []
    for seed in seeds:
        X, y, _ = GENERATORS[kind](100_000, d, seed=seed)
        inertia, ref_labels = _kmeans_reference(kind, d, seed)
        est = CompressiveKMeans(10, method=method, random_state=seed).fit(X)
        ratios.append(sse(X, est.cluster_centers_) / inertia)
        ari_gaps.append(adjusted_rand_score(y, ref_labels) - adjusted_rand_score(y, est.labels_))
    assert max(ratios) <= worst_ratio, ratios
    # ARI below KMeans's: measured at most 2.2e-4.
    assert max(ari_gaps) <= 7e-4, ari_gaps


@functools.cache
def _em_reference_score(kind, seed):
    """Held-out log-likelihood per sample of scikit-learn's EM (diagonal, n_init=10)."""
    X, _, _ = GENERATORS[kind](120_000, 10, seed=seed)
    ref = GaussianMixture(10, covariance_type="diag", n_init=10, random_state=seed).fit(X[:100_000])
    return ref.score(X[100_000:])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["clompr", "split"])
@pytest.mark.parametrize(
    "kind, worst_gap",
    [
        # Held-out log-likelihood below EM's (n_init=10), nats/sample, worst over
        # seeds 100-104 (both methods): 0.00101 and 0.00177; the bars allow 3x.
        ("literature", 0.003),
        ("anisotropic", 0.0053),
    ],
)
def test_gmm_quality_bar(kind, worst_gap, method):
    gaps = []
    for seed in QUALITY_SEEDS:
        X, _, _ = GENERATORS[kind](120_000, 10, seed=seed)
        X, X_test = X[:100_000], X[100_000:]
        est = CompressiveGMM(10, method=method, random_state=seed).fit(X)
        gaps.append(_em_reference_score(kind, seed) - est.score(X_test))
    assert max(gaps) <= worst_gap, gaps


def test_fit_sketch_of_merged_parts_recovers_centers():
    X, y, means = literature_mixture(20_000, 5, k=4, seed=3)
    op = sketchcore.SketchOperator.from_data(X, 400, seed=1)
    parts = [op.sketch(p) for p in np.array_split(X, 5)]
    est = CompressiveKMeans(4, n_replicates=5, random_state=0).fit_sketch(sketchcore.Sketch.merge(parts))
    assert est.operator_ is op and est.sketch_.count == 20_000
    ref = KMeans(4, n_init=10, random_state=0).fit(X)
    # Measured: SSE ratio 1.000048, weights within 0.00092 of the true fractions.
    assert sse(X, est.cluster_centers_) / ref.inertia_ < 1.00015
    assert not hasattr(est, "labels_")
    np.testing.assert_allclose(np.sort(est.weights_), np.sort(np.bincount(y) / len(y)), atol=0.003)


def test_predict_transform_score_consistent():
    X, _, _ = literature_mixture(3000, 3, k=3, seed=4)
    est = CompressiveKMeans(3, random_state=0).fit(X)
    dist = est.transform(X)
    assert dist.shape == (3000, 3)
    np.testing.assert_array_equal(est.predict(X), dist.argmin(1))
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    assert est.score(X) == pytest.approx(-sse(X, est.cluster_centers_), rel=1e-9)
    np.testing.assert_array_equal(est.fit_predict(X), est.labels_)
    assert CompressiveKMeans(3, compute_labels=False, random_state=0).fit(X).__dict__.get("labels_") is None


def test_gmm_api():
    X, _, _ = literature_mixture(5000, 4, k=3, seed=5)
    est = CompressiveGMM(3, random_state=0).fit(X)
    ref = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    # Same parametrisation as scikit-learn: the densities agree when the models do.
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(est.predict(X), proba.argmax(1))
    # Measured: 0.00078 nats/sample below EM; variances (true 1) within 0.94-1.11.
    assert est.score(X) == pytest.approx(ref.score(X), abs=0.0025)
    assert est.covariances_.shape == (3, 4)
    np.testing.assert_allclose(est.covariances_, 1.0, rtol=0.3)
    ours = est.score_samples(X[:5])
    sk = GaussianMixture(3, covariance_type="diag")
    sk.weights_, sk.means_, sk.covariances_ = est.weights_, est.means_, est.covariances_
    sk.precisions_cholesky_ = est.precisions_cholesky_
    np.testing.assert_allclose(ours, sk.score_samples(X[:5]), rtol=1e-10)
    # The criteria of scikit-learn's GaussianMixture with the same parameters.
    assert est.bic(X) == pytest.approx(sk.bic(X), rel=1e-12)
    assert est.aic(X) == pytest.approx(sk.aic(X), rel=1e-12)
    n_params = 3 * 4 * 2 + 3 - 1
    assert est.bic(X) - est.aic(X) == pytest.approx(n_params * (np.log(len(X)) - 2), rel=1e-9)
    Xs, ys = est.sample(100)
    assert Xs.shape == (100, 4) and ys.shape == (100,)


def test_estimators_pickle_and_clone():
    X, _, _ = literature_mixture(2000, 2, k=2, seed=6)
    est = CompressiveKMeans(2, random_state=0).fit(X)
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.cluster_centers_, est.cluster_centers_)
    assert clone(est).get_params() == est.get_params()
    again = CompressiveKMeans(2, random_state=0).fit(X)
    np.testing.assert_array_equal(again.cluster_centers_, est.cluster_centers_)  # reproducible


@pytest.mark.parametrize("Est", [CompressiveKMeans, CompressiveGMM])
def test_degenerate_cases(Est):
    rng = np.random.default_rng(7)
    # K = 1
    X = rng.normal(size=(500, 3)) + 5
    one = Est(1, random_state=0).fit(X)
    center = one.cluster_centers_ if Est is CompressiveKMeans else one.means_
    np.testing.assert_allclose(center[0], X.mean(0), atol=0.2)
    # K larger than the number of distinct points
    few = np.repeat(np.array([[0.0, 0.0], [10.0, 10.0]]), 50, axis=0)
    est = Est(4, random_state=0).fit(few)
    centers = est.cluster_centers_ if Est is CompressiveKMeans else est.means_
    assert centers.shape == (4, 2) and np.all(np.isfinite(centers))
    assert np.isclose(est.weights_.sum(), 1.0)
    # Surplus atoms duplicate a point or take ~0 weight: every weighted center
    # sits within 7% of the separation (14) of a data point.
    near = np.min(np.linalg.norm(centers[:, None] - few[[0, -1]][None], axis=2), axis=1)
    assert np.all(near[est.weights_ > 0.05] < 1.0)
    # constant feature and d = 1
    Xc = np.column_stack([rng.normal(size=300), np.full(300, 2.0)])
    est = Est(2, random_state=0).fit(Xc)
    centers = est.cluster_centers_ if Est is CompressiveKMeans else est.means_
    np.testing.assert_allclose(centers[:, 1], 2.0)
    X1 = np.concatenate([rng.normal(-5, 1, 300), rng.normal(5, 1, 300)])[:, None]
    est = Est(2, random_state=0).fit(X1)
    centers = est.cluster_centers_ if Est is CompressiveKMeans else est.means_
    np.testing.assert_allclose(np.sort(centers[:, 0]), [-5, 5], atol=0.3)


def test_bad_sketches_and_operators():
    op = sketchcore.SketchOperator(3, 50, seed=0)
    with pytest.raises(EmptySketchError, match="weight"):
        CompressiveKMeans(2).fit_sketch(sketchcore.Sketch.empty(op))
    with pytest.raises(EmptySketchError):
        CompressiveKMeans(2).fit(np.ones((5, 3)), sample_weight=np.zeros(5))
    with pytest.raises(InvalidParameterError):
        CompressiveKMeans(2).fit_sketch(np.ones(50))
    sk = op.sketch(np.random.default_rng(0).normal(size=(100, 3)))
    with pytest.raises(DimensionMismatchError):
        CompressiveKMeans(2).fit_sketch(sk, bounds=(np.zeros(2), np.ones(2)))
    with pytest.raises(InvalidParameterError):
        CompressiveKMeans(2).fit_sketch(sk, bounds=(np.ones(3), np.zeros(3)))
    with pytest.raises(DimensionMismatchError):
        CompressiveKMeans(2, operator=op).fit(np.ones((10, 4)))


@pytest.mark.parametrize("operator", ["structured", "dense"])
def test_operator_choices_and_quantized(operator):
    X, _, _ = literature_mixture(20_000, 8, k=3, seed=8)
    ref = KMeans(3, n_init=10, random_state=0).fit(X)
    est = CompressiveKMeans(3, operator=operator, random_state=0).fit(X)
    # Measured SSE ratios: 1.00011 dense, 1.00008 structured, 1.00008 quantized.
    assert sse(X, est.cluster_centers_) / ref.inertia_ < 1.00035
    qop = sketchcore.SketchOperator.from_data(X, 2000, seed=2, dither=True, quantize=True)
    q = CompressiveKMeans(3, operator=qop, random_state=0).fit(X)
    assert sse(X, q.cluster_centers_) / ref.inertia_ < 1.00035


@pytest.mark.parametrize("Est", [CompressiveKMeans, CompressiveGMM])
def test_split_decoder_small_k(Est):
    X, _, _ = literature_mixture(30_000, 6, k=4, seed=11)
    ref = KMeans(4, n_init=10, random_state=0).fit(X)
    est = Est(4, method="split", random_state=0).fit(X)
    centers = est.cluster_centers_ if Est is CompressiveKMeans else est.means_
    assert sse(X, centers) / ref.inertia_ < 1.0003  # measured 1.00010
    assert np.isclose(est.weights_.sum(), 1.0) and centers.shape == (4, 6)


@pytest.mark.parametrize("Est", [CompressiveKMeans, CompressiveGMM])
def test_batch_decoder_small_k(Est):
    X, _, _ = literature_mixture(30_000, 6, k=4, seed=11)
    ref = KMeans(4, n_init=10, random_state=0).fit(X)
    est = Est(4, method="batch", random_state=0).fit(X)
    centers = est.cluster_centers_ if Est is CompressiveKMeans else est.means_
    assert sse(X, centers) / ref.inertia_ < 1.0003  # measured 1.00010
    assert np.isclose(est.weights_.sum(), 1.0) and centers.shape == (4, 6)


def test_auto_method_is_clompr_for_small_k():
    X, _, _ = literature_mixture(5_000, 3, k=3, seed=2)
    a = CompressiveGMM(3, n_replicates=1, random_state=0).fit(X)
    b = CompressiveGMM(3, method="clompr", n_replicates=1, random_state=0).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_auto_method_is_split_above_threshold():
    from sketchcore.learning.estimators import AUTO_SPLIT_THRESHOLD

    k = AUTO_SPLIT_THRESHOLD + 1
    X, _, _ = literature_mixture(5_000, 3, k=k, seed=2)
    a = CompressiveGMM(k, n_replicates=1, sketch_size=300, random_state=0).fit(X)
    b = CompressiveGMM(k, method="split", n_replicates=1, sketch_size=300, random_state=0).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_nnls_gram_path_matches_direct():
    from scipy.optimize import nnls

    from sketchcore.learning.steps import _nnls_atoms, _real

    rng = np.random.default_rng(0)
    k, m = 40, 60_000  # 2 m k above the direct-path limit
    a = np.exp(1j * rng.uniform(0, 6.3, (k, m))) * rng.uniform(0.2, 1.0, (k, 1))
    beta = np.where(rng.uniform(size=k) < 0.5, 0.0, rng.uniform(0.1, 1.0, k))
    z = beta @ a + 0.01 * (rng.normal(size=m) + 1j * rng.normal(size=m))
    got = _nnls_atoms(a, z)
    want = nnls(_real(a).T, _real(z))[0]
    np.testing.assert_allclose(got, want, atol=1e-8)
    assert np.all(got >= 0)


@pytest.mark.parametrize("with_pool", [True, False])
def test_split_and_batch_decoders_without_or_with_sample(with_pool):
    """Decoders called directly: start points from the sample, or box-uniform."""
    from sketchcore.learning.atoms import AtomModel
    from sketchcore.learning.batch import batch_clompr
    from sketchcore.learning.splitting import split_decode

    X, _, _ = literature_mixture(20_000, 4, k=3, seed=5)
    op = sketchcore.SketchOperator(4, 300, sigma=1.0, seed=0)
    sk = op.sketch(X)
    lo, hi = sk.bounds
    model = AtomModel(op, True, lo, hi, var_bounds=(np.full(4, 1e-3), ((hi - lo) / 2) ** 2))
    pool = X[:500] if with_pool else None
    ref = KMeans(3, n_init=10, random_state=0).fit(X)
    for decode in (batch_clompr, split_decode):
        res = decode(sk.z, model, 3, rng=np.random.default_rng(0), var0=np.ones(4), start_pool=pool)
        assert res.means.shape == (3, 4) and np.isclose(res.weights.sum(), 1.0)
        assert sse(X, res.means) / ref.inertia_ < 1.0006, decode.__name__  # measured 1.00018


def test_verbose_reports_through_logging(caplog, capsys):
    X, _, _ = literature_mixture(2000, 2, k=2, seed=6)
    with caplog.at_level("INFO", logger="sketchcore"):
        CompressiveKMeans(2, n_replicates=2, verbose=1, random_state=0).fit(X)
    replicates = [r for r in caplog.records if "replicate" in r.getMessage()]
    # K = 4 density components, stored rows: the replicates alternate between the two decoders
    assert [r.getMessage() for r in replicates] == ["CompressiveKMeans: replicate 1/2 (clompr)",
                                                    "CompressiveKMeans: replicate 2/2 (split)"]
    assert any("relative residual" in r.getMessage() for r in caplog.records)
    assert capsys.readouterr().out == ""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["split", "clompr"])
def test_large_k_recovers_components(method):
    """K = 64, d = 12, m = 1e4, unequal diagonal spreads: every component found
    and the held-out log-likelihood close to the true model's.

    Measured (seed 100, both methods): largest distance from a true mean to
    the closest decoded mean 0.157; 0.0140 nats/sample below the true model.
    The bars allow 3x.
    """
    from scipy.special import logsumexp

    rng = np.random.default_rng(100)
    k, d, n = 64, 12, 100_000
    means = rng.uniform(-5, 5, size=(k, d))
    std = rng.uniform(0.5, 1.5, size=(k, d))
    labels = rng.integers(k, size=2 * n)
    X = means[labels] + std[labels] * rng.standard_normal((2 * n, d))
    X, X_test = X[:n], X[n:]
    log_p = np.log(1.0 / k) - 0.5 * (
        np.sum(np.log(2 * np.pi * std**2), axis=1)[None, :]
        + (((X_test[:, None, :] - means[None]) / std[None]) ** 2).sum(axis=2)
    )
    true_score = float(np.mean(logsumexp(log_p, axis=1)))
    est = CompressiveGMM(k, sketch_size=10_000, method=method, n_replicates=1, random_state=0).fit(X)
    worst = max(np.min(np.linalg.norm(est.means_ - mu, axis=1)) for mu in means)
    assert worst < 0.47, worst
    assert true_score - est.score(X_test) < 0.042


def test_verbose_decode_draws_a_progress_bar_of_the_steps(capsys):
    X, _ = make_mixture(600, 4, 3, random_state=1)
    CompressiveGMM(3, n_replicates=2, method="clompr", random_state=0, verbose=1).fit(X)
    err = capsys.readouterr().err
    # CL-OMPR: 2K steps per replicate, counted to the end, with the residual.
    assert "CompressiveGMM decode" in err and "12/12" in err and "residual=" in err
    # "auto" alternates with splitting, whose step count depends on the data: no total.
    CompressiveGMM(3, n_replicates=2, random_state=0, verbose=1).fit(X)
    err = capsys.readouterr().err
    assert "CompressiveGMM decode" in err and "residual=" in err and "/12" not in err
    CompressiveGMM(3, n_replicates=2, random_state=0).fit(X)
    assert capsys.readouterr().err == ""
