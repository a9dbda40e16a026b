"""Sketching an audio corpus: file by file, with checkpoints and resumption.

:func:`sketch_corpus` walks folders, skips unreadable files with one warning
each, streams the frame features of each file into the sketch and into
:class:`~sketchcore.core.moments.RunningMoments` (so standardisation
statistics come from the same single pass; :meth:`Sketch.standardized` then
turns the raw sketch into the sketch of standardised features exactly),
checkpoints atomically and resumes.

Needs the ``audio`` extra (``pip install 'sketchcore[audio]'``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import stat
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from sketchcore.audio.features import AudioDecodeError, FeatureConfig, find_audio_files, iter_features, native_rate
from sketchcore.backends.dask import worker_threads
from sketchcore.core.moments import RunningMoments
from sketchcore.core.operator import SketchOperator
from sketchcore.core.sketch import Sketch
from sketchcore.exceptions import CorruptSketchFileError, InvalidParameterError, SketchFileError
from sketchcore.io.sketch_file import MAGIC

__all__ = ["CorpusReport", "sketch_corpus", "AUTO_SIGMA_FACTOR"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class CorpusReport:
    """What :func:`sketch_corpus` did."""

    files_done: list[str]
    skipped: list[tuple[str, str]]
    frames: int
    seconds: float
    resumed_from: int = 0
    #: Files of this run recorded below the features' sample rate (upsampled).
    upsampled: int = 0

    def summary(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        text = (f"{len(self.files_done)} files sketched ({self.resumed_from} from the checkpoint), "
                f"{len(self.skipped)} skipped, {self.frames} frames, {rate:,.0f} frames/s")
        return text + (f"; {self.upsampled} upsampled" if self.upsampled else "")


def _file_partial(path: str, cfg_dict: dict, op) -> tuple:
    """Features and sketch sums of one file (runs locally or on a Dask worker):
    ``("ok", path, sketch, moments, notes, native_rate)`` or ``("error", path, why)``.
    ``notes``: the distinct warnings the audio libraries raised on this file."""
    cfg = FeatureConfig.from_dict(cfg_dict)
    sk = Sketch.empty(op)
    moments = RunningMoments(cfg.dim)
    threads = worker_threads()  # on a Dask worker: its own thread count
    # One BLAS thread: the features' rounding is then the same in every
    # process (Dask workers run with one), so the sketch is too.
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(1):
        warnings.simplefilter("always")
        try:
            record = file_record(path)
            rate = native_rate(path)
            for feats in iter_features(path, cfg):
                sk.update(feats, n_threads=threads)
                moments.update(feats)
        except (SketchFileError, OSError, ValueError) as exc:
            return ("error", path, str(exc).replace("\n", " "))
    if sk.count == 0:
        return ("error", path, f"{path}: no frames")
    notes = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    return ("ok", path, sk, moments, notes, rate, record)


def file_record(path: Any) -> list:
    """What identifies a sketched file: ``[resolved path, size, mtime_ns, sha256]``.

    ``--resume`` recognises a file by its resolved path, size and
    modification time (never by how it was spelled); merges recognise one
    by its content hash, whatever its path at each site.
    """
    p = Path(path).resolve()
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        info = os.fstat(f.fileno())
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return [str(p), int(info.st_size), int(info.st_mtime_ns), digest.hexdigest()]


def sketch_corpus(
    paths: Sequence[Any],
    output: Any,
    *,
    features: FeatureConfig | dict | None = None,
    operator: SketchOperator | None = None,
    force: bool = False,
    sketch_size: int = 2000,
    kind: str = "sparse",
    sigma: float | str = "auto",
    seed: int = 0,
    resume: bool = False,
    checkpoint_seconds: float = 30.0,
    client: Any = None,
    progress: bool = True,
    log: Any = None,
    warn: Callable[[str], None] | None = None,
    metadata: dict | None = None,
) -> tuple[Any, CorpusReport]:
    """Sketches the frame features of every audio file under ``paths``.

    The output sketch file doubles as the checkpoint: it is rewritten
    atomically every ``checkpoint_seconds`` with the list of files done, and
    ``resume=True`` continues from it (same operator and features), so an
    interrupted run ends with exactly the sketch of an uninterrupted one.
    Unreadable files are skipped with one warning each (passed to ``warn``;
    default: a WARNING record of this module's logger) and listed in ``log``
    (default: ``output`` + ".log", written only when a file was skipped); the
    run never aborts for one file. Warnings of the audio libraries about a
    file, and a file recorded below the features' sample rate (upsampled:
    the first one, then a count in the report), go to ``warn`` too.
    ``metadata`` (JSON) is recorded in the sketch file of a new run; a resumed
    run keeps the checkpoint's.

    ``sigma`` is a number, ``"feature-std"`` (1.2 x, or 0.72 x for the default
    sparse operators, the geometric mean of the
    per-feature standard deviations of the first files' frames; ``"auto"``,
    the default, means this) or ``"envelope"`` (the envelope heuristic).

    Returns
    -------
    (Sketch, CorpusReport)
    """
    output = Path(output)
    log = Path(log) if log is not None else output.with_name(output.name + ".log")
    warn = warn or logger.warning
    _check_output(output, resume, force)
    problems: list[tuple[str, str]] = []
    files = [str(p) for p in find_audio_files(paths, problems)]
    done: list = []
    skipped: list[tuple[str, str]] = []
    if resume and output.exists():
        total = Sketch.load(output)
        meta = total.metadata
        try:
            cfg = FeatureConfig.from_dict(meta["features"])
            done = [_checked_record(r) for r in meta.get("files_done", [])]
            skipped = [(str(Path(s[0]).resolve()), str(s[1])) for s in meta.get("skipped", [])]
            moments = RunningMoments.from_dict(meta["feature_moments"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CorruptSketchFileError(f"{output}: not a checkpoint of sketch_corpus ({exc!r})",
                                         path=str(output)) from None
        _check_resume_features(features, cfg)
        if operator is not None and operator.fingerprint != total.fingerprint:
            raise InvalidParameterError("--resume continues with the checkpoint's operator; drop --like")
        op = total.operator
        resumed = len(done)
        extra = {k: v for k, v in meta.items() if k not in ("features", "files_done", "skipped", "feature_moments")}
    else:
        cfg = features if isinstance(features, FeatureConfig) else FeatureConfig(**(features or {}))
        if operator is not None:
            if operator.dim != cfg.dim:
                raise InvalidParameterError(
                    f"the operator has dim {operator.dim} but the features have {cfg.dim}: use the feature "
                    "settings of the sketch whose operator is reused"
                )
            op = operator
        else:
            op = _corpus_operator(files, cfg, sketch_size, kind, sigma, seed, warn)
        total = Sketch.empty(op)
        moments = RunningMoments(cfg.dim)
        resumed = 0
        extra = dict(metadata or {})
    # Files are recognised by resolved path, size and modification time.
    done_ids = {r[0]: r for r in done}
    for path in files:
        r = done_ids.get(path)
        if r is not None and len(r) >= 3:
            info = os.stat(path)
            if (int(info.st_size), int(info.st_mtime_ns)) != (r[1], r[2]):
                raise InvalidParameterError(
                    f"{path} changed since it was sketched into {output} (size or modification time): its "
                    "earlier frames are in the checkpoint; start a new sketch without --resume"
                )
    finished = set(done_ids) | {s[0] for s in skipped}
    for path, why in problems:
        if path not in finished:
            skipped.append((path, why))
            finished.add(path)
            warn(f"warning: skipping {path}: {why}")
    todo = [f for f in files if f not in finished]

    def checkpoint() -> None:
        total.metadata.update({
            **extra,
            "features": cfg.to_dict(),
            "files_done": done,
            "skipped": [list(s) for s in skipped],
            "feature_moments": moments.to_dict(),
        })
        total.save(output)

    bar = _bar(progress, len(files), resumed + len(skipped))
    t0 = time.perf_counter()
    frames0 = total.count
    last = time.perf_counter()
    upsampled = 0
    for result in _results(todo, cfg, op, client):
        if result[0] == "ok":
            _, path, part, mom, notes, rate, record = result
            total._merge_into(part)  # in place; the books (files, moments) are kept below
            moments = moments + mom
            done.append(record)
            for note in notes:
                warn(f"warning: {path}: {note}")
            if cfg.sample_rate != "native" and rate < cfg.sample_rate:
                if not upsampled:
                    warn(f"warning: {path} is recorded at {rate} Hz and upsampled to {cfg.sample_rate} Hz, the "
                         f"features' rate: the bands above {rate // 2} Hz hold no signal; a sample rate of {rate} (or "
                         "'native': each file's own) computes the features at the recording's rate (further "
                         "upsampled files are counted in the summary)")
                upsampled += 1
        else:
            _, path, why = result
            skipped.append((path, why))
            warn(f"warning: skipping {path}: {why}")
        if bar is not None:
            elapsed = max(time.perf_counter() - t0, 1e-9)
            bar.update(1)
            bar.set_postfix(frames=total.count, rate=f"{(total.count - frames0) / elapsed:,.0f}/s", refresh=False)
        if time.perf_counter() - last >= checkpoint_seconds:
            checkpoint()
            last = time.perf_counter()
    if bar is not None:
        bar.close()
    checkpoint()
    if skipped:
        # File names that are not UTF-8 are written back as the bytes they were.
        with open(log, "w", encoding="utf-8", errors="surrogateescape") as f:
            for path, why in skipped:
                f.write(f"{path}\t{why}\n")
    elif log.exists():  # a list from an earlier run of this output
        log.unlink()
    report = CorpusReport(done, skipped, total.count - frames0, time.perf_counter() - t0, resumed, upsampled)
    return total, report


def _check_output(output: Path, resume: bool, force: bool) -> None:
    """Before any work: the output's folder exists, and an existing output is
    a sketch file (the checkpoint) unless ``force``."""
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise SketchFileError(f"{output}: the folder {folder} does not exist", path=str(output))
    if output.exists() and not force:
        if not is_sketch_file(output):
            raise SketchFileError(
                f"{output} exists and is not a sketch file: refusing to overwrite it (pass --force, or "
                "force=True, to replace it)", path=str(output)
            )


def is_sketch_file(path: Any) -> bool:
    """Whether ``path`` is a regular file starting with the sketch file magic."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _checked_record(record: Any) -> list:
    """A ``files_done`` entry of a checkpoint as ``[resolved path, size, mtime_ns, sha256]``;
    entries of older versions (a path as spelled) become ``[resolved path]``."""
    if isinstance(record, str):
        return [str(Path(record).resolve())]
    if (isinstance(record, list) and len(record) == 4 and isinstance(record[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in record[1:3])
            and isinstance(record[3], str)):
        return record
    raise ValueError(f"bad files_done entry {record!r:.80}")


def _check_resume_features(features: FeatureConfig | dict | None, cfg: FeatureConfig) -> None:
    """``--resume`` takes the feature settings from the checkpoint; settings
    given explicitly must agree with them (the error names those that differ)."""
    if features is None:
        return
    given = features.to_dict() if isinstance(features, FeatureConfig) else dict(features)
    saved = cfg.to_dict()
    keys = [k for k in sorted(given) if given[k] != saved.get(k)]
    if keys:
        differ = ", ".join(f"{k}={given[k]!r} (the checkpoint has {saved.get(k)!r})" for k in keys)
        raise InvalidParameterError(
            f"the feature settings of a resumed run come from its checkpoint; these differ: {differ}. "
            "Drop them (or start a new sketch without --resume)", settings=keys
        )


#: ``sigma="feature-std"``: AUTO_SIGMA_FACTOR x the geometric mean of the
#: per-feature standard deviations (dense and structured operators).
AUTO_SIGMA_FACTOR = 1.2
#: The same for sparse operators (the default): 0.6 x AUTO_SIGMA_FACTOR, as the
#: estimators scale their within-cluster estimate for sparse frequencies
#: (sketchcore.learning.estimators.SPARSE_SIGMA_FACTOR).
SPARSE_AUTO_SIGMA_FACTOR = 0.72


def _corpus_operator(files, cfg, sketch_size, kind, sigma, seed, warn):
    """Operator for the corpus, with sigma from the frames of the first readable files.

    ``"feature-std"`` (what ``"auto"`` means here): 1.2 x the geometric mean
    of the per-feature standard deviations (about 0.8 in standardised units),
    0.72 x for sparse operators.
    ``"envelope"``: the envelope heuristic (:func:`~sketchcore.estimate_sigma`),
    which tight clusters such as silence pull far below the scale the
    decoders need on real audio.
    """
    if isinstance(sigma, str):
        if sigma not in ("auto", "feature-std", "envelope"):
            raise InvalidParameterError(
                f"sigma must be 'feature-std' ('auto'), 'envelope' or a number, got {sigma!r}"
            )
        sample, seen = [], 0
        for path in files:
            try:
                with warnings.catch_warnings():  # reported when the file is sketched
                    warnings.simplefilter("ignore")
                    for feats in iter_features(path, cfg):
                        sample.append(feats)
                        seen += len(feats)
                        break
            except (SketchFileError, OSError, ValueError):
                continue
            if seen >= 20_000 or len(sample) >= 8:
                break
        if not sample:
            raise AudioDecodeError("no readable audio file to estimate sigma from")
        frames = np.concatenate(sample)
        if sigma == "envelope":
            return SketchOperator.from_data(frames, sketch_size, kind=kind, seed=seed)
        std = frames.std(axis=0)
        std = std[std > 0]
        scale = float(np.exp(np.mean(np.log(std)))) if std.size else 1.0
        factor = SPARSE_AUTO_SIGMA_FACTOR if kind == "sparse" else AUTO_SIGMA_FACTOR
        return SketchOperator(cfg.dim, sketch_size, sigma=factor * scale, kind=kind, seed=seed)
    return SketchOperator(cfg.dim, sketch_size, sigma=float(sigma), kind=kind, seed=seed)


def _results(todo: list[str], cfg: FeatureConfig, op, client) -> Iterator[tuple]:
    """Per-file results in file order, computed locally or by a Dask client.

    The caller adds them in this order, so a list of files gives the same
    sketch, bit for bit, however the files were spread over workers.
    """
    if client is None:
        for path in todo:
            yield _file_partial(path, cfg.to_dict(), op)
        return
    futures = client.map(_file_partial, todo, cfg_dict=cfg.to_dict(), op=op, pure=False)
    for fut in futures:
        yield fut.result()
        fut.release()


def _bar(progress: bool, total: int, initial: int):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="file", desc="sketching", file=sys.stderr)
