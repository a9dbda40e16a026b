"""Merge, resume and the command line keep the books: files are identified by
what they are, metadata merges exactly, sites can share an operator, results
do not depend on how files were spread over workers, and the command line
refuses what would lose data with a one-line error."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

librosa = pytest.importorskip("librosa")
sf = pytest.importorskip("soundfile")

import sketchcore  # noqa: E402
from conftest import rel_err  # noqa: E402
from sketchcore import Sketch  # noqa: E402
from sketchcore.audio import FeatureConfig, RunningMoments, iter_features, sketch_corpus  # noqa: E402
from sketchcore.exceptions import (  # noqa: E402
    InvalidParameterError,
    OperatorMismatchError,
    OverlappingDataError,
)

CFG = FeatureConfig(kind="mfcc", sample_rate=22050, n_mfcc=13)
OPTS = dict(features=CFG, sketch_size=300, sigma=30.0, progress=False)


def tone(seconds, f0, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(22050 * seconds)) / 22050
    return 0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.normal(size=t.size)


def write_site(folder, n, seed, seconds=0.4):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"rec{i:02d}.wav", tone(seconds, 150 + 70 * i + 13 * seed, seed * 100 + i), 22050)
    return folder


def frames_of(folder, cfg=CFG):
    """The frames the pipeline sketches (extracted, as it does, with one BLAS thread)."""
    files = sorted(p for p in folder.rglob("*.wav"))
    with threadpool_limits(1):
        return np.concatenate([f for p in files for f in iter_features(p, cfg)]).astype(np.float64)


def _cli(*args, check=True, **kwargs):
    run = subprocess.run([sys.executable, "-m", "sketchcore", *map(str, args)], capture_output=True, text=True,
                         **kwargs)
    if check:
        assert run.returncode == 0, run.stderr
    return run


# -- resume (item: files identified by what they are) -----------------------------------------------


def test_resume_with_the_folder_spelled_differently_adds_nothing(tmp_path, monkeypatch):
    write_site(tmp_path / "corpus", 4, 1)
    monkeypatch.chdir(tmp_path)
    first, _ = sketch_corpus(["corpus"], "out.sketch", **OPTS)
    again, report = sketch_corpus([str(tmp_path / "corpus")], tmp_path / "out.sketch", resume=True, **OPTS)
    assert report.resumed_from == 4 and len(report.files_done) == 4
    assert again.count == first.count and np.array_equal(again.cos_sums, first.cos_sums)
    records = Sketch.load(tmp_path / "out.sketch").metadata["files_done"]
    assert [r[0] for r in records] == [str((tmp_path / "corpus" / f"rec{i:02d}.wav").resolve()) for i in range(4)]
    assert all(len(r) == 4 and len(r[3]) == 64 for r in records)  # path, size, mtime, sha256
    # A file changed since the checkpoint is not silently counted again.
    wav = tmp_path / "corpus" / "rec01.wav"
    sf.write(wav, tone(0.5, 300, 7), 22050)
    with pytest.raises(InvalidParameterError, match="changed since"):
        sketch_corpus(["corpus"], "out.sketch", resume=True, **OPTS)


# -- merges keep the metadata ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    write_site(root / "a", 3, 1)
    write_site(root / "b", 3, 2)
    a, _ = sketch_corpus([root / "a"], root / "a.sketch", **OPTS)
    b, _ = sketch_corpus([root / "b"], root / "b.sketch", **OPTS)
    return root, a, b


def test_merge_combines_moments_and_file_lists(sites):
    root, a, b = sites
    merged = Sketch.merge([Sketch.load(root / "a.sketch"), Sketch.load(root / "b.sketch")])
    frames = np.vstack([frames_of(root / "a"), frames_of(root / "b")])
    moments = RunningMoments.from_dict(merged.metadata["feature_moments"])
    assert moments.count == len(frames) == merged.count
    np.testing.assert_allclose(moments.mean, frames.mean(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(moments.std, frames.std(0), rtol=1e-10)
    assert len(merged.metadata["files_done"]) == 6
    # fit standardises with the statistics of both parts.
    np.testing.assert_allclose(merged.standardized().operator.mean, frames.mean(0), rtol=1e-10, atol=1e-10)


def test_merging_shared_files_is_refused(sites, tmp_path):
    root, a, b = sites
    with pytest.raises(OverlappingDataError):
        Sketch.merge([a, a.copy()])
    # The same recordings at another path (a copy at a second site) are the same data.
    shutil.copytree(root / "a", tmp_path / "copy")
    c, _ = sketch_corpus([tmp_path / "copy"], tmp_path / "c.sketch", **OPTS)
    with pytest.raises(OverlappingDataError, match="two parts"):
        Sketch.merge([a, c])
    run = _cli("merge", root / "a.sketch", root / "a.sketch", "-o", tmp_path / "m.sketch", check=False)
    assert run.returncode == 2 and "twice" in run.stderr and "Traceback" not in run.stderr
    shutil.copy(root / "a.sketch", tmp_path / "a2.sketch")
    run = _cli("merge", root / "a.sketch", tmp_path / "a2.sketch", "-o", tmp_path / "m.sketch", check=False)
    assert run.returncode == 2 and "twice" in run.stderr
    assert not (tmp_path / "m.sketch").exists()


def test_merging_different_feature_settings_is_refused(tmp_path):
    write_site(tmp_path / "x", 2, 3)
    mfcc, _ = sketch_corpus([tmp_path / "x"], tmp_path / "mfcc.sketch", **OPTS)
    logmel_cfg = FeatureConfig(kind="logmel", sample_rate=22050, n_mels=13)
    opts = dict(OPTS, features=logmel_cfg)
    logmel, _ = sketch_corpus([tmp_path / "x"], tmp_path / "logmel.sketch", operator=mfcc.operator, **opts)
    assert logmel.fingerprint == mfcc.fingerprint
    with pytest.raises(OperatorMismatchError, match="feature settings"):
        Sketch.merge([mfcc, logmel])


# -- two sites, one operator --------------------------------------------------------------------------


def test_two_sites_merge_with_like(tmp_path):
    write_site(tmp_path / "site_a", 3, 4)
    write_site(tmp_path / "site_b", 3, 5, seconds=0.6)
    common = ["--n-mfcc", "13", "--quiet"]
    _cli("sketch", tmp_path / "site_a", "-o", tmp_path / "A.sketch", *common)
    _cli("sketch", tmp_path / "site_b", "-o", tmp_path / "B.sketch", *common)
    run = _cli("merge", tmp_path / "A.sketch", tmp_path / "B.sketch", "-o", tmp_path / "AB.sketch", check=False)
    assert run.returncode == 2 and "sigma" in run.stderr and "--like" in run.stderr
    _cli("sketch", tmp_path / "site_b", "-o", tmp_path / "B2.sketch", "--like", tmp_path / "A.sketch", "--quiet")
    _cli("merge", tmp_path / "A.sketch", tmp_path / "B2.sketch", "-o", tmp_path / "AB.sketch")
    merged = Sketch.load(tmp_path / "AB.sketch")
    a = Sketch.load(tmp_path / "A.sketch")
    assert merged.fingerprint == a.fingerprint and merged.metadata["features"] == a.metadata["features"]
    frames = np.vstack([frames_of(tmp_path / "site_a", FeatureConfig.from_dict(a.metadata["features"])),
                        frames_of(tmp_path / "site_b", FeatureConfig.from_dict(a.metadata["features"]))])
    assert merged.count == len(frames)
    assert rel_err(merged.z, a.operator.sketch(frames.astype(np.float32)).z) < 1e-6
    # --like with a conflicting explicit option names it.
    run = _cli("sketch", tmp_path / "site_b", "-o", tmp_path / "B3.sketch", "--like", tmp_path / "A.sketch",
               "--n-mfcc", "20", "--quiet", check=False)
    assert run.returncode == 2 and "--n-mfcc" in run.stderr and "Traceback" not in run.stderr


# -- resume takes the checkpoint's settings ----------------------------------------------------------


def test_resume_takes_settings_from_the_checkpoint(tmp_path):
    write_site(tmp_path / "c", 3, 6)
    out = tmp_path / "d.sketch"
    _cli("sketch", tmp_path / "c", "-o", out, "--features", "mfcc", "--deltas", "--n-mfcc", "13",
         "--sketch-size", "400", "--sigma", "40", "--quiet")
    before = Sketch.load(out)
    run = _cli("sketch", tmp_path / "c", "-o", out, "--resume", "--quiet")  # the README's resume line
    assert "3 from the checkpoint" in run.stdout
    after = Sketch.load(out)
    assert after.count == before.count and np.array_equal(after.cos_sums, before.cos_sums)
    assert after.metadata["features"] == before.metadata["features"]
    run = _cli("sketch", tmp_path / "c", "-o", out, "--resume", "--n-mfcc", "20", "--sketch-size", "500",
               "--quiet", check=False)
    assert run.returncode == 2 and "--n-mfcc 20" in run.stderr and "--sketch-size 500" in run.stderr
    assert "Traceback" not in run.stderr


# -- one sketch whatever the execution --------------------------------------------------------------


def test_workers_give_the_sketch_of_a_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = tmp_path / "w"
    folder.mkdir()
    # The first file is the longest: with workers it finishes last.
    sf.write(folder / "f00.wav", tone(4.0, 200, 0), 22050)
    for i in range(1, 6):
        sf.write(folder / f"f{i:02d}.wav", tone(0.3, 200 + 40 * i, i), 22050)
    local, _ = sketch_corpus([folder], tmp_path / "local.sketch", **OPTS)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster, distributed.Client(cluster) as client:
        remote, _ = sketch_corpus([folder], tmp_path / "remote.sketch", client=client, **OPTS)
    assert np.array_equal(remote.cos_sums, local.cos_sums) and np.array_equal(remote.sin_sums, local.sin_sums)
    assert np.array_equal(remote.samples, local.samples)
    a = Sketch.load(tmp_path / "local.sketch").metadata
    b = Sketch.load(tmp_path / "remote.sketch").metadata
    assert a["feature_moments"] == b["feature_moments"] and a["files_done"] == b["files_done"]


# -- the command line ----------------------------------------------------------------------------------


def test_output_that_is_not_a_sketch_is_not_overwritten(tmp_path):
    folder = write_site(tmp_path / "in", 2, 7)
    wav = folder / "rec00.wav"
    before = wav.read_bytes()
    run = _cli("sketch", folder, "-o", wav, "--n-mfcc", "13", "--quiet", check=False)
    assert run.returncode == 2 and "not a sketch file" in run.stderr and "--force" in run.stderr
    assert wav.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    run = _cli("merge", tmp_path / "x.sketch", "-o", notes, check=False)
    assert run.returncode == 2 and notes.read_text() == "mine"


def test_new_files_follow_the_umask(tmp_path):
    folder = write_site(tmp_path / "in", 1, 8)
    out = tmp_path / "u.sketch"
    run = subprocess.run(f"umask 022 && {sys.executable} -m sketchcore sketch {folder} -o {out} --n-mfcc 13 --quiet",
                         shell=True, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_missing_output_folder_is_reported_at_the_start(tmp_path):
    folder = write_site(tmp_path / "in", 1, 9)
    run = _cli("sketch", folder, "-o", tmp_path / "nowhere" / "x.sketch", "--quiet", check=False)
    assert run.returncode == 2 and "nowhere" in run.stderr and "does not exist" in run.stderr
    assert ".tmp" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names, FIFOs and links")
def test_odd_entries_are_warned_and_logged(tmp_path):
    folder = write_site(tmp_path / "in", 2, 10)
    odd = os.fsencode(str(folder)) + b"/caf\xe9.wav"  # not UTF-8
    with open(odd, "wb") as f:
        f.write(b"not audio at all" * 10)
    os.symlink(folder / "missing.wav", folder / "dangling.wav")
    os.mkfifo(folder / "pipe.wav")
    out = tmp_path / "o.sketch"
    run = _cli("sketch", folder, "-o", out, "--n-mfcc", "13", "--quiet")
    assert "dangling.wav" in run.stderr and "pipe.wav" in run.stderr and "caf" in run.stderr
    log = (tmp_path / "o.sketch.log").read_bytes()
    assert b"dangling.wav" in log and b"pipe.wav" in log and b"caf\xe9.wav" in log
    assert "3 skipped" in run.stdout


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folders_are_warned(tmp_path):
    folder = write_site(tmp_path / "in", 1, 11)
    locked = folder / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        run = _cli("sketch", folder, "-o", tmp_path / "o.sketch", "--n-mfcc", "13", "--quiet")
    finally:
        locked.chmod(0o755)
    assert "locked" in run.stderr and "unreadable folder" in run.stderr


@pytest.mark.parametrize("args,needle", [
    (["fit", "kmeans", "{sketch}", "-k", "0", "-o", "{out}"], "positive integer"),
    (["fit", "kmeans", "{sketch}", "-k", "-2", "-o", "{out}"], "positive integer"),
    (["fit", "kmeans", "{folder}", "-k", "2", "-o", "{out}"], "not a regular file"),
    (["sketch", "{folder}", "-o", "{out}", "--sigma", "abc"], "--sigma"),
    (["sketch", "{folder}", "-o", "{out}", "--sketch-size", "0"], "--sketch-size"),
    (["fit", "kmeans", "{sketch}", "-k", "5000", "-o", "{out}"], "components"),
])
def test_bad_command_lines_get_one_line_errors(tmp_path, args, needle):
    folder = write_site(tmp_path / "in", 1, 12)
    sk = tmp_path / "s.sketch"
    sketchcore.SketchOperator(13, 100, seed=0).sketch(np.random.default_rng(0).normal(size=(50, 13))).save(sk)
    argv = [a.format(sketch=sk, folder=folder, out=tmp_path / "m.json") for a in args]
    run = _cli(*argv, check=False)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and needle in run.stderr
    assert len([line for line in run.stderr.splitlines() if "error" in line]) == 1
