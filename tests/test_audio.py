"""Audio pipeline and command line: fixtures generated here, bad files skipped,
features equal to librosa's, checkpoints and resume exact."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")
sf = pytest.importorskip("soundfile")

from conftest import rel_err  # noqa: E402
from sketchcore import Sketch  # noqa: E402
from sketchcore.audio import (  # noqa: E402
    AudioDecodeError,
    FeatureConfig,
    RunningMoments,
    extract_features,
    find_audio_files,
    iter_features,
    load_audio,
    sketch_corpus,
)
from sketchcore.exceptions import InvalidParameterError  # noqa: E402


def tone(sr, seconds, f0, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.normal(size=t.size)
    return np.stack([y, 0.5 * y], axis=1) if channels == 2 else y


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    good = root / "good"
    (good / "sub").mkdir(parents=True)
    sf.write(good / "mono.wav", tone(22050, 2.0, 220), 22050)
    sf.write(good / "stereo_44k.wav", tone(44100, 1.5, 330, 1, channels=2), 44100)
    sf.write(good / "sub" / "clip.flac", tone(16000, 1.0, 440, 2), 16000)
    sf.write(good / "sub" / "clip.ogg", tone(22050, 1.0, 550, 3).astype(np.float32), 22050, format="OGG",
             subtype="VORBIS")
    sf.write(good / "silent.wav", np.zeros(22050), 22050)
    sf.write(good / "very_short.wav", tone(22050, 0.005, 220), 22050)
    bad = root / "bad"
    bad.mkdir()
    full = (good / "mono.wav").read_bytes()
    (bad / "truncated.wav").write_bytes(full[:30])
    (bad / "not_audio.wav").write_text("this is a text file, not audio\n" * 20)
    (bad / "empty.flac").write_bytes(b"")
    (root / "nothing_here").mkdir()
    return root


CFG = FeatureConfig(kind="mfcc", sample_rate=22050, n_mfcc=13)


def test_finds_audio_recursively(corpus):
    found = find_audio_files([corpus / "good"])
    names = [p.name for p in found]
    assert found == sorted(found) and set(names) == {"mono.wav", "stereo_44k.wav", "clip.flac", "clip.ogg",
                                                     "silent.wav", "very_short.wav"}
    assert find_audio_files([corpus / "nothing_here"]) == []
    with pytest.raises(FileNotFoundError):
        find_audio_files([corpus / "missing"])


@pytest.mark.parametrize(
    "name", ["mono.wav", "stereo_44k.wav", "sub/clip.flac", "sub/clip.ogg", "silent.wav", "very_short.wav"]
)
def test_features_match_librosa(corpus, name):
    path = corpus / "good" / name
    ours = np.concatenate(list(iter_features(path, CFG)))
    y, _ = librosa.load(path, sr=22050, mono=True, res_type="soxr_hq")
    ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=13, n_fft=2048, hop_length=512, n_mels=64).T
    assert ours.shape == ref.shape and ours.shape[1] == CFG.dim
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)


def test_logmel_deltas_stacking(corpus):
    y = load_audio(corpus / "good" / "mono.wav", 22050)
    lm = extract_features(y, FeatureConfig(kind="logmel", n_mels=32, stack=2))
    power = librosa.feature.melspectrogram(y=y, sr=22050, n_mels=32)
    mel = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).T
    assert lm.shape == (mel.shape[0], 32 * 5)
    np.testing.assert_allclose(lm[:, 64:96], mel, rtol=1e-5, atol=1e-3)  # the centre frame
    np.testing.assert_allclose(lm[5:-5, :32], mel[3:-7], rtol=1e-5, atol=1e-3)  # two frames back
    md = extract_features(y, FeatureConfig(n_mfcc=10, deltas=True))
    assert md.shape[1] == 30 == FeatureConfig(n_mfcc=10, deltas=True).dim


def test_long_files_stream_in_blocks(corpus):
    path = corpus / "good" / "mono.wav"
    blocks = list(iter_features(path, FeatureConfig(n_mfcc=13, block_seconds=0.5)))
    assert len(blocks) == 4
    whole = np.concatenate(list(iter_features(path, CFG)))
    assert abs(sum(len(b) for b in blocks) - len(whole)) <= 4 * 2


@pytest.mark.parametrize("name", ["truncated.wav", "not_audio.wav", "empty.flac"])
def test_bad_files_raise_audio_errors(corpus, name):
    with pytest.raises(AudioDecodeError) as info:
        list(iter_features(corpus / "bad" / name, CFG))
    assert isinstance(info.value, OSError) and name in str(info.value)


def test_running_moments_merge():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 3)) * [1, 5, 0.1] + [0, 10, -3]
    a = RunningMoments(3).update(X[:100]).update(X[100:600])
    b = RunningMoments(3).update(X[600:])
    m = a + b
    np.testing.assert_allclose(m.mean, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.std, X.std(0), rtol=1e-12)


def test_bad_files_skipped_rest_exact(corpus, tmp_path):
    warnings = []
    sk_all, report = sketch_corpus([corpus / "good", corpus / "bad"], tmp_path / "all.sketch", features=CFG,
                                   sketch_size=300, sigma=30.0, progress=False, warn=warnings.append)
    skips = [w for w in warnings if w.startswith("warning: skipping")]
    assert len(report.skipped) == 3 and len(skips) == 3
    # The others: the one file below 22050 Hz (16 kHz FLAC), librosa's note on the 5 ms file.
    others = [w for w in warnings if w not in skips]
    assert len(others) == 2 and report.upsampled == 1
    assert any("clip.flac is recorded at 16000 Hz and upsampled to 22050 Hz" in w for w in others)
    assert any("very_short.wav: n_fft=2048 is too large" in w for w in others)
    log = (tmp_path / "all.sketch.log").read_text().splitlines()
    names = sorted(line.split("\t")[0].rsplit("/", 1)[1] for line in log)
    assert names == ["empty.flac", "not_audio.wav", "truncated.wav"]
    sk_good, _ = sketch_corpus([corpus / "good"], tmp_path / "good.sketch", features=CFG, sketch_size=300,
                               sigma=30.0, progress=False)
    assert sk_all.count == sk_good.count
    np.testing.assert_array_equal(sk_all.cos_sums, sk_good.cos_sums)
    # ... and equal to sketching the features of the good files directly
    # (float32 features: per-file tiles regroup the float32 partial sums).
    frames = np.concatenate([f for p in find_audio_files([corpus / "good"]) for f in iter_features(p, CFG)])
    assert rel_err(sk_all.z, sk_all.operator.sketch(frames).z) < 1e-6
    moments = RunningMoments.from_dict(Sketch.load(tmp_path / "all.sketch").metadata["feature_moments"])
    # float32 features: their rounding depends on the BLAS threads (the pipeline extracts with one).
    np.testing.assert_allclose(moments.mean, frames.astype(np.float64).mean(0), rtol=1e-6, atol=1e-6)


def _cli(*args, check=True):
    run = subprocess.run([sys.executable, "-m", "sketchcore", *map(str, args)], capture_output=True, text=True)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_cli_sketch_then_fit(corpus, tmp_path):
    out = tmp_path / "c.sketch"
    run = _cli("sketch", corpus / "good", corpus / "bad", "-o", out, "--n-mfcc", "13", "--sketch-size", "400",
               "--quiet")
    assert "3 skipped" in run.stdout and run.stderr.count("warning: skipping") == 3
    info = _cli("info", out)
    assert "samples" in info.stdout
    for model in ("kmeans", "gmm"):
        js = tmp_path / f"{model}.json"
        _cli("fit", model, out, "-k", "3", "-o", js)
        m = json.loads(js.read_text())
        assert m["model"] == model and len(m["means"]) == 3 and len(m["means"][0]) == 13
        assert abs(sum(m["weights"]) - 1) < 1e-9 and m["standardization"] is not None
    js = tmp_path / "split.json"
    _cli("fit", "gmm", out, "-k", "4", "--method", "split", "--replicates", "1", "-o", js)
    m = json.loads(js.read_text())
    assert m["method"] == "split" and len(m["means"]) == 4 and len(m["covariances"]) == 4
    assert "--features" in _cli("sketch", "--help").stdout
    bad = _cli("fit", "kmeans", corpus / "bad" / "not_audio.wav", "-k", "2", "-o", tmp_path / "x.json", check=False)
    assert bad.returncode == 2 and "not a valid sketch file" in bad.stderr


SLOW_SKETCH = textwrap.dedent(
    """
    import sys, time
    import sketchcore.audio.pipeline as A
    original = A._file_partial
    def slow(*args, **kwargs):
        time.sleep(0.3)
        return original(*args, **kwargs)
    A._file_partial = slow
    cfg = A.FeatureConfig(kind="mfcc", sample_rate=22050, n_mfcc=13)
    A.sketch_corpus([sys.argv[1]], sys.argv[2], features=cfg, sketch_size=400, sigma=25.0, seed=0,
                    checkpoint_seconds=0.0, progress=False)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_interrupted_run_resumes_to_the_same_sketch(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10):
        sf.write(folder / f"f{i:02d}.wav", tone(22050, 0.5, 200 + 30 * i, i), 22050)
    out = tmp_path / "run.sketch"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SKETCH, str(folder), str(out)])
    deadline = time.time() + 60
    while not out.exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    partial = Sketch.load(out)
    assert 1 <= len(partial.metadata["files_done"]) < 10
    args = ["--n-mfcc", "13", "--sketch-size", "400", "--sigma", "25", "--quiet"]
    _cli("sketch", folder, "-o", out, "--resume", *args)
    resumed = Sketch.load(out)
    clean = tmp_path / "clean.sketch"
    _cli("sketch", folder, "-o", clean, *args)
    clean = Sketch.load(clean)
    assert len(resumed.metadata["files_done"]) == 10 and resumed.count == clean.count
    np.testing.assert_array_equal(resumed.cos_sums, clean.cos_sums)
    np.testing.assert_array_equal(resumed.sin_sums, clean.sin_sums)
    assert resumed.metadata["feature_moments"] == clean.metadata["feature_moments"]


def test_demo_quick_runs_and_writes_figure(tmp_path):
    run = _cli("demo", "--quick", "--out", tmp_path / "demo")
    assert "SSE ratio to KMeans" in run.stdout and "sklearn GaussianMixture" in run.stdout
    png = tmp_path / "demo" / "demo.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_feature_std_is_the_audio_auto_sigma(corpus):
    from sketchcore.audio.pipeline import _corpus_operator

    files = [str(p) for p in find_audio_files([corpus / "good"])]
    auto = _corpus_operator(files, CFG, 200, "dense", "auto", 0, print)
    named = _corpus_operator(files, CFG, 200, "dense", "feature-std", 0, print)
    assert auto == named
    with pytest.raises(InvalidParameterError):
        _corpus_operator(files, CFG, 200, "dense", "cluster", 0, print)
