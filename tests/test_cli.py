"""The command line as a user meets it: start-up without heavy imports,
--version, defaults in every help; model files read back as fitted
estimators; ``sketchcore predict``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import sketchcore
from sketchcore.cli.main import build_parser, main
from sketchcore.datasets import make_mixture
from sketchcore.exceptions import InvalidParameterError, ModelFileError, UnsupportedFormatError
from sketchcore.learning.model_file import read_model, save_model

HEAVY = ("sklearn", "scipy", "librosa", "matplotlib", "dask", "distributed", "soundfile", "tqdm")

# --- start-up and help -------------------------------------------------------


def _imported_by(*args: str) -> set[str]:
    """Top-level packages imported by ``python -X importtime -m sketchcore ARGS``."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "sketchcore", *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    names = re.findall(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)\s*$", run.stderr, flags=re.M)
    assert "sketchcore" in names, "importtime output not understood"
    return {name.split(".")[0] for name in names}


def test_help_imports_no_heavy_package():
    for args in (["--help"], ["sketch", "--help"], ["predict", "--help"], ["--version"]):
        heavy = _imported_by(*args) & set(HEAVY)
        assert not heavy, f"sketchcore {' '.join(args)} imports {sorted(heavy)}"


def test_package_import_is_light_until_an_estimator_is_used():
    code = ("import sys, sketchcore; before = 'sklearn' in sys.modules; sketchcore.CompressiveKMeans; "
            "print(before, 'sklearn' in sys.modules, 'load_model' in dir(sketchcore))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["False", "True", "True"], run.stderr


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"sketchcore {sketchcore.__version__}"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_help_shows_the_defaults():
    parser = build_parser()
    commands = _subparsers(parser)
    assert {"sketch", "fit", "predict", "info", "demo", "speed"} <= set(commands)
    checked = 0
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())  # undo line wrapping
        for action in sub._actions:
            default = action.default
            if not action.option_strings or default is None or default is False or default == argparse.SUPPRESS:
                continue
            assert f"(default: {default})" in text, f"sketchcore {name} --help: {action.option_strings} default"
            checked += 1
    assert checked >= 20


# --- model files -------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    X, _ = make_mixture(4000, 5, 3, random_state=1)
    return X


@pytest.fixture(scope="module")
def fitted(data):
    km = sketchcore.CompressiveKMeans(3, n_replicates=1, random_state=0, compute_labels=False).fit(data)
    gmm = sketchcore.CompressiveGMM(3, n_replicates=1, random_state=0, reg_covar=1e-4, operator="structured").fit(data)
    return {"kmeans": km, "gmm": gmm}


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_model_files_follow_the_umask(fitted, tmp_path, suffix):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = tmp_path / "sub" / f"model{suffix}"
        save_model(fitted["kmeans"], path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("kind", ["kmeans", "gmm"])
def test_model_file_round_trip(fitted, data, tmp_path, kind, suffix):
    est = fitted[kind]
    path = tmp_path / f"model{suffix}"
    mean, std = data.mean(0), data.std(0)
    save_model(est, path, mean=mean, std=std, features={"kind": "mfcc"}, metadata={"note": "x"})
    loaded = sketchcore.load_model(path)
    assert type(loaded) is type(est)
    X = data[::7] + 0.3
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    if kind == "gmm":
        np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
        assert loaded.reg_covar == est.reg_covar and loaded.n_components == 3
    else:
        np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
        assert loaded.score(X) == est.score(X) and loaded.compute_labels is False
    np.testing.assert_array_equal(loaded.weights_, est.weights_)
    assert loaded.get_params() == est.get_params()
    assert loaded.residual_ == est.residual_ and loaded.n_features_in_ == 5
    assert loaded.decoder_ == est.decoder_ in ("clompr", "split")
    saved = read_model(path)
    np.testing.assert_array_equal(saved.mean, mean)
    np.testing.assert_array_equal(saved.std, std)
    np.testing.assert_allclose(saved.prepare(data[:5]), (data[:5] - mean) / std, rtol=0, atol=0)
    assert saved.features == {"kind": "mfcc"} and saved.metadata == {"note": "x"} and saved.kind == kind


def test_model_file_raw_units_for_readers(fitted, tmp_path):
    est = fitted["gmm"]
    mean, std = np.arange(5.0), np.linspace(1, 3, 5)
    save_model(est, tmp_path / "g.json", mean=mean, std=std)
    doc = json.loads((tmp_path / "g.json").read_text())
    np.testing.assert_allclose(doc["means"], est.means_ * std + mean, rtol=1e-15)
    np.testing.assert_allclose(doc["covariances"], est.covariances_ * std**2, rtol=1e-15)
    assert doc["format"] == "sketchcore-model" and doc["version"] == 1 and doc["model"] == "gmm"


def test_bad_model_files(fitted, tmp_path):
    with pytest.raises(FileNotFoundError):
        sketchcore.load_model(tmp_path / "missing.json")
    (tmp_path / "text.json").write_text("not json at all")
    (tmp_path / "other.json").write_text('{"a": 1}')
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 truncated")
    for name in ("text.json", "other.json", "zip.npz"):
        with pytest.raises(ModelFileError):
            sketchcore.load_model(tmp_path / name)
    save_model(fitted["gmm"], tmp_path / "g.json")
    doc = json.loads((tmp_path / "g.json").read_text())
    for change, error in [
        (lambda d: d.update(version=99), UnsupportedFormatError),
        (lambda d: d["estimator"].update(covariances=d["estimator"]["covariances"][:2]), ModelFileError),
        (lambda d: d["estimator"]["covariances"][0].__setitem__(0, -1.0), ModelFileError),
        (lambda d: d["estimator"].update(weights=[1.0, 1.0]), ModelFileError),
        (lambda d: d["estimator"].update(means=[[1.0, "a"]]), ModelFileError),
        (lambda d: d["estimator"].update({"class": "KMeans"}), ModelFileError),
        (lambda d: d.update(standardization={"mean": [0.0] * 5, "std": [0.0] * 5}), ModelFileError),
    ]:
        bad = json.loads(json.dumps(doc))
        change(bad)
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(error):
            sketchcore.load_model(tmp_path / "bad.json")
    with pytest.raises(InvalidParameterError, match="not fitted"):
        save_model(sketchcore.CompressiveGMM(2), tmp_path / "x.json")
    with pytest.raises(InvalidParameterError, match="both"):
        save_model(fitted["gmm"], tmp_path / "x.json", mean=np.zeros(5))


# --- fit, then predict on audio ---------------------------------------------


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    root = tmp_path_factory.mktemp("audio")
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    for i in range(4):  # one second of a tone, then one second of noise
        y = np.concatenate([0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t), 0.05 * rng.normal(size=sr)])
        sf.write(root / f"rec{i}.wav", y, sr)
    sf.write(root / "noise_only.wav", 0.05 * rng.normal(size=sr), sr)
    (root / "broken.wav").write_bytes(b"RIFF....WAVEfmt nothing")
    sketch = root / "c.sketch"
    args = ["--n-mfcc", "8", "--sample-rate", "16000", "--hop-length", "256", "--sketch-size", "600", "--quiet"]
    assert main(["sketch", *[str(root / f"rec{i}.wav") for i in range(4)], "-o", str(sketch), *args]) == 0
    models = {}
    for kind in ("kmeans", "gmm"):
        models[kind] = root / f"{kind}.json"
        assert main(["fit", kind, str(sketch), "-k", "2", "--replicates", "1", "-o", str(models[kind])]) == 0
    return root, models


def _frames(path, saved):
    from sketchcore.audio import FeatureConfig, extract_features, load_audio

    cfg = FeatureConfig.from_dict(saved.features)
    return extract_features(load_audio(path, cfg.sample_rate), cfg), cfg


def test_predict_frames_match_the_loaded_estimator(audio, capsys):
    root, models = audio
    for kind, model in models.items():
        saved = read_model(model)
        assert saved.mean is not None and saved.features["n_mfcc"] == 8
        capsys.readouterr()
        assert main(["predict", str(model), str(root / "rec1.wav"), "--per", "frame"]
                    + (["--posteriors"] if kind == "gmm" else [])) == 0
        rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        frames, cfg = _frames(root / "rec1.wav", saved)
        U = (frames - saved.mean) / saved.std
        assert rows[0][:4] == ["file", "frame", "time", "label"] and len(rows) == len(frames) + 1
        labels = np.array([int(r[3]) for r in rows[1:]])
        np.testing.assert_array_equal(labels, saved.estimator.predict(U))
        assert float(rows[-1][2]) == pytest.approx((len(frames) - 1) * cfg.hop_length / cfg.sample_rate, abs=1e-3)
        # The tone and the noise fall into different clusters.
        assert labels[5] != labels[-5]
        if kind == "gmm":
            post = np.array([[float(v) for v in r[4:]] for r in rows[1:]])
            np.testing.assert_allclose(post, saved.estimator.predict_proba(U), rtol=1e-5, atol=1e-6)


def test_predict_segments_and_scores(audio, tmp_path, capsys):
    from scipy.special import logsumexp
    from scipy.stats import norm

    root, models = audio
    out = tmp_path / "gmm.json"
    assert main(["predict", str(models["gmm"]), str(root), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipping" in err and "broken.wav" in err  # one warning, the run goes on
    doc = json.loads(out.read_text())
    assert doc["kind"] == "gmm" and doc["skipped"][0]["file"].endswith("broken.wav")
    by_name = {e["file"].rsplit("/", 1)[-1]: e for e in doc["files"]}
    assert set(by_name) == {f"rec{i}.wav" for i in range(4)} | {"noise_only.wav"}
    saved = read_model(models["gmm"])
    raw = json.loads(models["gmm"].read_text())  # the components in raw feature units
    for name, entry in by_name.items():
        frames, _ = _frames(root / name, saved)
        # Independent reference: the mixture density in raw units, from the file's raw-unit components.
        comp = np.stack([norm.logpdf(frames.astype(np.float64), m, np.sqrt(c)).sum(1)
                         for m, c in zip(np.array(raw["means"]), np.array(raw["covariances"]), strict=True)], axis=1)
        ref = logsumexp(comp + np.log(raw["weights"]), axis=1).mean()
        assert entry["log_likelihood"] == pytest.approx(ref, rel=1e-6, abs=1e-6)
        segs = entry["segments"]
        assert segs[0]["start"] == 0 and segs[-1]["end"] == pytest.approx(entry["seconds"])
        pairs = zip(segs[:-1], segs[1:], strict=True)
        assert all(a["end"] == b["start"] and a["label"] != b["label"] for a, b in pairs)
    assert len(by_name["rec0.wav"]["segments"]) >= 2
    # Per-file scores as CSV: the same numbers.
    capsys.readouterr()
    assert main(["predict", str(models["gmm"]), str(root / "rec0.wav"), "--per", "file"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "frames", "seconds", "log_likelihood"]
    assert float(rows[1][3]) == pytest.approx(by_name["rec0.wav"]["log_likelihood"], abs=1e-6)


def test_predict_errors_are_one_line(audio, tmp_path, capsys):
    root, models = audio
    assert main(["predict", str(models["kmeans"]), str(root / "rec0.wav"), "--posteriors"]) == 2
    assert "--posteriors needs a GMM" in capsys.readouterr().err
    assert main(["predict", str(root / "rec0.wav"), str(root / "rec0.wav")]) == 2
    assert "not a sketchcore model file" in capsys.readouterr().err
    assert main(["predict", str(models["gmm"]), str(root / "broken.wav")]) == 2
    assert "none of the 1 audio files" in capsys.readouterr().err
    save_model(sketchcore.load_model(models["gmm"]), tmp_path / "nofeat.json")
    assert main(["predict", str(tmp_path / "nofeat.json"), str(root / "rec0.wav")]) == 2
    assert "no audio feature settings" in capsys.readouterr().err


# --- info and sketch sizing --------------------------------------------------


def test_info_is_a_short_summary_and_json_the_full_header(tmp_path, capsys):
    from sketchcore.audio import FeatureConfig

    X = np.random.default_rng(0).normal(size=(500, 20))
    sk = sketchcore.SketchOperator(20, 200, sigma=1.0, seed=3).sketch(X)
    files = [f"/archive/{'deep/' * 20}recording_{i:03d}.flac" for i in range(80)]
    sk.metadata = {"features": FeatureConfig(n_mfcc=20).to_dict(), "files_done": files,
                   "skipped": [[f"/archive/bad_{i}.wav", "cannot decode audio: " + "x" * 80] for i in range(3)],
                   "max_components": 32, "site": "north"}
    path = tmp_path / "a.sketch"
    sk.save(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(out) < 1500 and len(lines) <= 16 and max(map(len, lines)) <= 120, out
    text = " ".join(out.split())
    for expected in ("samples 500 frames", "sketch size 200", "MFCC, 20 coefficients, 22050 Hz",
                     "80 sketched, 3 skipped",
                     "up to 32 components", "privacy none", "by sketchcore " + sketchcore.__version__, "site=north"):
        assert expected in text, expected
    assert main(["info", str(path), "--json"]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["count"] == 500 and header["metadata"]["files_done"] == files
    assert header["fingerprint"] == sk.fingerprint and "created" in header
    other = tmp_path / "b.sketch"
    other.write_bytes(path.read_bytes())
    assert main(["info", str(path), str(other), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {str(path), str(other)}


def test_fit_draws_the_decoders_progress_on_a_terminal(audio, tmp_path, monkeypatch):
    import io

    root, _ = audio
    out = tmp_path / "a.sketch"
    args = ["--n-mfcc", "8", "--sample-rate", "16000", "--hop-length", "256", "--quiet"]
    assert main(["sketch", str(root / "rec0.wav"), "-o", str(out), "--max-components", "3", *args]) == 0

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["fit", "gmm", str(out), "-k", "3", "--replicates", "1", "-o", str(tmp_path / "m.json")]) == 0
    assert "CompressiveGMM decode" in term.getvalue() and "6/6" in term.getvalue()


def test_max_components_sizes_the_sketch_and_fit_warns_beyond(audio, tmp_path, capsys):
    root, _ = audio
    wav = str(root / "rec0.wav")
    args = ["--n-mfcc", "8", "--sample-rate", "16000", "--hop-length", "256", "--quiet"]
    out = tmp_path / "k3.sketch"
    assert main(["sketch", wav, "-o", str(out), "--max-components", "3", *args]) == 0
    sk = sketchcore.Sketch.load(out)
    assert sk.sketch_size == 5 * (2 * 8 + 1) * 3 and sk.metadata["max_components"] == 3
    capsys.readouterr()
    assert main(["fit", "kmeans", str(out), "-k", "4", "--replicates", "1", "-o", str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert "sized for at most 3" in err and "--max-components 4" in err
    assert main(["fit", "kmeans", str(out), "-k", "3", "--replicates", "1", "-o", str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "decode" not in err  # no progress bar off a terminal
    default = tmp_path / "default.sketch"
    assert main(["sketch", wav, "-o", str(default), *args]) == 0
    sk = sketchcore.Sketch.load(default)
    assert sk.sketch_size == 5 * 17 * 16 and sk.metadata["max_components"] == 16
    assert main(["sketch", wav, "-o", str(tmp_path / "x.sketch"), "--max-components", "0", *args]) == 2
    assert "--max-components must be at least 1" in capsys.readouterr().err


# --- audio defaults -----------------------------------------------------------


def test_low_rate_audio_warnings_progress_and_log(tmp_path):
    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    folder = tmp_path / "calls"
    folder.mkdir()
    t = np.arange(8000) / 8000
    for i in range(2):
        sf.write(folder / f"call{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t), 8000)
    sf.write(folder / "click.wav", 0.3 * np.sin(2 * np.pi * 500 * t[:100]), 8000)  # shorter than one FFT window
    out = tmp_path / "calls.sketch"
    args = ["--n-mfcc", "8", "--sketch-size", "200", "--sigma", "20"]
    # stderr is a pipe here, not a terminal: no progress bar, even without --quiet.
    run = subprocess.run([sys.executable, "-m", "sketchcore", "sketch", str(folder), "-o", str(out), *args],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("upsampled to 22050 Hz") == 1 and "3 upsampled" in run.stdout
    assert "\r" not in run.stderr and "UserWarning" not in run.stderr
    assert "warning: " + str(folder / "click.wav") + ": n_fft=2048 is too large" in run.stderr
    assert not (tmp_path / "calls.sketch.log").exists()
    native = tmp_path / "native.sketch"
    (tmp_path / "native.sketch.log").write_text("stale\n")
    assert main(["sketch", str(folder), "-o", str(native), "--sample-rate", "native", "--quiet", *args]) == 0
    assert not (tmp_path / "native.sketch.log").exists()  # nothing skipped: no list, not even an old one
    sk = sketchcore.Sketch.load(native)
    assert sk.metadata["features"]["sample_rate"] == "native"
    from sketchcore.audio import FeatureConfig, extract_features, load_audio

    cfg = FeatureConfig(n_mfcc=8)
    frames = np.concatenate([extract_features(load_audio(p, 8000), cfg, 8000) for p in sorted(folder.iterdir())])
    np.testing.assert_allclose(sk.z, sk.operator.sketch(frames).z, rtol=1e-5, atol=1e-6)
    model = tmp_path / "native.json"
    assert main(["fit", "kmeans", str(native), "-k", "2", "--replicates", "1", "-o", str(model)]) == 0
    assert main(["predict", str(model), str(folder / "call0.wav"), "-o", str(tmp_path / "p.json")]) == 0
    entry = json.loads((tmp_path / "p.json").read_text())["files"][0]
    assert entry["frame_seconds"] == 512 / 8000 and entry["seconds"] == pytest.approx(entry["frames"] * 512 / 8000)
    with pytest.raises(SystemExit):
        main(["sketch", str(folder), "-o", str(tmp_path / "y.sketch"), "--sample-rate", "fast"])


def test_interrupted_sketch_says_how_to_resume(tmp_path, capsys, monkeypatch):
    pytest.importorskip("librosa")
    import sketchcore.audio

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sketchcore.audio, "sketch_corpus", interrupted)
    out = tmp_path / "x.sketch"
    assert main(["sketch", str(tmp_path), "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and str(out) in err


# --- the demo figure ------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("librosa")
    pytest.importorskip("matplotlib")
    from sketchcore.cli.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo"), quick=True, progress=False)


def test_demo_figure_colours_legends_truth_and_comparison(demo):
    from matplotlib.colors import to_rgb

    from sketchcore.audio import extract_features, load_audio
    from sketchcore.cli.demo import TRUTH_CLASSES, corpus_truth, truth_colors

    fig, km, cfg = demo["fig"], demo["km"], demo["cfg"]
    centroids, timeline, times, memory = fig.axes[:4]
    k = len(km.weights_)
    line_colour = {int(re.match(r"cluster (\d+)", line.get_label()).group(1)): to_rgb(line.get_color())
                   for line in centroids.get_lines()}
    assert sorted(line_colour) == list(range(k))
    assert len(set(line_colour.values())) == k
    # Each frame of a "clusters found" row has the colour of its cluster's centroid line.
    img = np.asarray(timeline.get_images()[0].get_array())
    width = img.shape[1]
    truth = corpus_truth(demo["paths"][0].parent)
    hop = cfg.hop_length / cfg.sample_rate
    for i, path in enumerate(demo["paths"][:4]):
        frames = extract_features(load_audio(path, cfg.sample_rate), cfg)
        labels = km.predict((frames - demo["mean"]) / demo["std"])[:width]
        np.testing.assert_allclose(img[3 * i + 1], [line_colour[c] for c in labels])
        # ... and the row above it shows the true segments.
        for start, end, what in truth[path.name]:
            inside = np.flatnonzero((np.arange(width) * hop >= start) & (np.arange(width) * hop < end))
            np.testing.assert_allclose(img[3 * i][inside], np.broadcast_to(truth_colors()[TRUTH_CLASSES.index(what)],
                                                                          (len(inside), 3)))
    assert centroids.get_legend() is not None and timeline.get_legend() is not None
    legend = [t.get_text() for t in timeline.get_legend().get_texts()]
    assert {f"cluster {c}" for c in range(k)} | {f"true: {name}" for name in TRUTH_CLASSES} == set(legend)
    # The comparison the demo prints, drawn as printed (the GMM rows included, whatever their values).
    comparison = demo["comparison"]
    assert [p.get_width() for p in times.patches] == [row[1] for row in comparison]
    assert [p.get_width() for p in memory.patches[: len(comparison)]] == [row[2] for row in comparison]
    assert [t.get_text() for t in memory.get_yticklabels()] == [row[3] for row in comparison]
    assert f"log-lik/frame {demo['loglik']:.3f}" in [row[3] for row in comparison]
    assert any("sketchcore demo" in t.get_text() and "cores" in t.get_text() for t in fig.texts)
    assert demo["figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_reports_the_adaptation_to_stored_frames(audio, tmp_path, capsys):
    root, _ = audio
    sketch = root / "c.sketch"
    stored = len(sketchcore.Sketch.load(sketch).samples)
    capsys.readouterr()
    assert main(["fit", "gmm", str(sketch), "-k", "2", "--replicates", "1", "-o", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert f"the sketch's {stored} stored frames" in out and "decoded by CL-OMPR in" in out
    assert main(["fit", "gmm", str(sketch), "-k", "2", "--replicates", "2", "-o", str(tmp_path / "c.json")]) == 0
    assert re.search(r"decoded by (CL-OMPR|hierarchical splitting) in", capsys.readouterr().out)
    assert main(["fit", "gmm", str(sketch), "-k", "2", "--replicates", "1", "--no-adapt",
                 "-o", str(tmp_path / "b.json")]) == 0
    assert "decoded from the sketch alone" in capsys.readouterr().out
    adapted, bare = read_model(tmp_path / "a.json"), read_model(tmp_path / "b.json")
    assert bare.estimator.sample_relevance is None and adapted.estimator.sample_relevance == "cv"


def test_adaptation_line_names_a_refit_and_a_lloyd_refinement():
    from types import SimpleNamespace

    from sketchcore.cli.main import _adaptation_line
    from sketchcore.learning.sample_adaptation import REFIT, Adaptation

    refit = SimpleNamespace(sample_relevance_=0.0, feature_variance_scale_=None, adaptation_=REFIT)
    assert _adaptation_line(refit, 1000).startswith("fitted to the sketch's 1000 stored frames alone")
    kmeans = SimpleNamespace(sample_relevance_=16.0, feature_variance_scale_=None,
                             adaptation_=Adaptation(False, 16.0), refined_on_sample_=True, density_weight_=0.5)
    line = _adaptation_line(kmeans, 500)
    assert "MAP with relevance 16" in line and line.endswith(
        "refined by Lloyd's algorithm on those frames and draws of the density model weighing 0.5 times as much "
        "(cross-validation)")
    kept = SimpleNamespace(sample_relevance_=16.0, feature_variance_scale_=None,
                           adaptation_=Adaptation(False, 16.0), refined_on_sample_=False, density_weight_=np.inf)
    assert "Lloyd" not in _adaptation_line(kept, 500)
    bare = SimpleNamespace(sample_relevance_=None, feature_variance_scale_=None, adaptation_=None,
                           refined_on_sample_=False, density_weight_=None)
    line = _adaptation_line(bare, 0)
    assert line.startswith("decoded from the sketch alone") and "Lloyd" not in line
