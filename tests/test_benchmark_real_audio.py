"""The real-audio benchmark script runs end to end on synthetic tones (no corpus)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "benchmark_real_audio.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_real_audio", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def test_features_shapes_and_silence(bench):
    sr = bench.SR
    t = np.arange(sr) / sr
    y = np.concatenate([np.zeros(sr // 2), np.sin(2 * np.pi * 440 * t)]).astype(np.float32)
    f60, f192, kept = bench.extract(y)
    assert f60.shape[1] == 60 and f192.shape[1] == 192 and len(f60) == len(f192) == len(kept)
    # the digital silence (first 0.5 s, 50 frames) is dropped, the tone kept
    assert kept.min() >= 45 and 95 <= len(kept) <= 105
    assert np.all(np.isfinite(f60)) and np.all(np.isfinite(f192))
    # stacked log-mel: the middle block is frame t, the first block frame t-1
    assert np.allclose(f192[1:, :64], f192[:-1, 64:128])


def test_gus_patch_reader(bench, tmp_path):
    wave = (np.sin(np.arange(1000) / 10) * 20000).astype("<i2")
    head = bytearray(129 + 63 + 47)
    head[:22] = b"GF1PATCH110\0ID#000002\0"
    head[85:87] = (1).to_bytes(2, "little")
    sample = bytearray(96)
    sample[:7] = b"test\0\0\0"
    sample[8:12] = wave.nbytes.to_bytes(4, "little")
    sample[20:22] = (22050).to_bytes(2, "little")
    sample[55] = 1  # 16-bit, signed
    path = tmp_path / "t.pat"
    path.write_bytes(bytes(head) + bytes(sample) + wave.tobytes())
    ((name, rate, a),) = bench.read_gus_patch(path)
    assert name == "test" and rate == 22050
    assert np.allclose(a, wave / 32768.0)


def test_drum_kinds(bench):
    assert bench.drum_kind("Kick (Tama Superstar 22\")") == "kick"
    assert bench.drum_kind("c3 - bass drum 1") == "kick"
    assert bench.drum_kind("Pedal HH") == "hi-hat"
    assert bench.drum_kind("Snare Rimshot") == "snare"
    assert bench.drum_kind("Ride Bell") == "cymbal"
    assert bench.drum_kind("Cowbell") == "hand percussion"
    assert bench.drum_kind("Floor Tom") == "tom"
    assert bench.drum_kind("Zap 1") is None


def test_synthetic_table(bench, tmp_path, capsys):
    out = tmp_path / "r.json"
    bench.main(["--synthetic", "--dims", "20", "--k", "4", "--ident-k", "2", "--ident-dims", "20",
                "--kmeans-kwargs", '{"n_replicates": 1}', "--gmm-kwargs", '{"n_replicates": 1}',
                "--json", str(out)])
    text = capsys.readouterr().out
    assert "## k-means" in text and "## diagonal GMM" in text and "## identification" in text
    res = json.loads(out.read_text())
    assert res["meta"]["machine"]["simd_level"]
    (km,), (gm,), (idn,) = res["kmeans"], res["gmm"], res["ident"]
    assert km["m"] == gm["m"] == 5 * 41 * 4  # library default sizes, 5 (2d + 1) K
    assert km["sse_ratio"] >= 0.9 and math.isfinite(km["ari_kmeans"])
    assert math.isfinite(gm["ll_em"]) and math.isfinite(gm["ll_anchor"])
    # The anchor holds the memory of the sketch (2m floats) and of its stored rows (40 m // d by default).
    assert gm["n_anchor"] == round(2 * gm["m"] / 20) + min(40 * gm["m"] // 20, 4096, gm["n"])
    # The same memory for KMeans's anchor: its SSE over KMeans's on all rows, and its ARI.
    assert km["n_anchor"] == round(2 * km["m"] / 20) + min(40 * km["m"] // 20, 4096, km["n"])
    assert km["sse_anchor"] >= 0.9 and math.isfinite(km["ari_anchor"])
    assert "| SSE anchor (n) | ARI anchor |" in text
    assert gm["relevance"] is not None and isinstance(gm["variance_scaled"], bool)
    assert gm["decoder"] == "clompr"  # one replicate: CL-OMPR alone
    assert "| decoder |" in text
    assert idn["segments"] >= 4 and idn["acc_em"] > 0.5


def test_assign_matches_brute_force(bench):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1001, 7)).astype(np.float32)[:, ::1]
    C = rng.normal(size=(5, 7))
    d2 = ((X.astype(np.float64)[:, None, :] - C[None]) ** 2).sum(-1)
    labels, total = bench.assign(X, C, chunk=97)
    np.testing.assert_array_equal(labels, d2.argmin(1))
    assert total == pytest.approx(d2.min(1).sum(), rel=1e-12)


def _synthetic_run(bench, tmp_path, capsys, argv):
    """The synthetic benchmark with ``argv``: its JSON results and printed report."""
    out = tmp_path / "r.json"
    bench.main(["--synthetic", *argv, "--json", str(out)])
    return json.loads(out.read_text()), capsys.readouterr().out


def test_kmeans_repeats_report_means_over_random_states(bench, tmp_path, capsys):
    res, text = _synthetic_run(bench, tmp_path, capsys, ["--dims", "20", "--k", "4", "--only", "kmeans", "--repeats",
                                                         "2", "--kmeans-kwargs", '{"n_replicates": 1}'])
    (km,) = res["kmeans"]
    runs = km["runs"]
    assert len(runs["ari_sketch"]) == len(runs["ari_kmeans"]) == len(runs["density_weight"]) == 2
    assert km["ari_sketch"] == pytest.approx(np.mean(runs["ari_sketch"]))
    assert km["sse_ratio"] == pytest.approx(np.mean(runs["sse_ratio"]))
    assert "Means over random states 0 to 1" in text and " +- " in text


def test_identification_repeats_pool_the_segments_of_several_splits(bench, tmp_path, capsys):
    res, text = _synthetic_run(bench, tmp_path, capsys, ["--only", "ident", "--ident-dims", "20", "--ident-k", "2",
                                                         "--repeats", "2", "--gmm-kwargs", '{"n_replicates": 1}'])
    (idn,) = res["ident"]
    runs = idn["runs"]
    assert len(runs["segments"]) == len(runs["acc_sketch"]) == len(runs["acc_em"]) == 2
    assert idn["segments"] == sum(runs["segments"])
    pooled = np.dot(runs["acc_em"], runs["segments"]) / idn["segments"]
    assert idn["acc_em"] == pytest.approx(pooled)
    assert "Segments pooled over 2 splits" in text and "| per split |" in text


@pytest.mark.parametrize("bad", ["0", "101"])
def test_kmeans_repeats_are_bounded(bench, bad, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeats", bad])
    assert "--repeats must be between 1 and 100" in capsys.readouterr().err
