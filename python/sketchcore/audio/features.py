"""Audio files to frame features.

* :func:`load_audio`: any format ``soundfile`` (libsndfile) reads -- WAV, FLAC,
  OGG/Vorbis, and MP3 where the installed libsndfile supports it -- mixed to
  mono and resampled (soxr, through librosa) to the configured rate.
* :func:`extract_features`: MFCC (optionally with deltas) or log-mel frames
  from librosa, optionally stacked with neighbouring frames.
* :func:`iter_features`: the features of one file, block by block for files
  longer than ``FeatureConfig.block_seconds`` (blocks are processed
  independently, so frames at block boundaries differ slightly from a
  whole-file computation); nothing holds more than one block.

Needs the ``audio`` extra (``pip install 'sketchcore[audio]'``).
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore.exceptions import BackendUnavailableError, InvalidParameterError, SketchFileError

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodeError",
    "FeatureConfig",
    "find_audio_files",
    "load_audio",
    "extract_features",
    "iter_features",
    "native_rate",
]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".opus")


class AudioDecodeError(SketchFileError):
    """An audio file cannot be decoded (corrupt, truncated, not audio, empty)."""


def _librosa():
    try:
        import librosa
        import soundfile  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            "audio support needs the 'audio' extra: pip install 'sketchcore[audio]' (librosa, soundfile)"
        ) from exc
    return librosa


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """What features are computed from audio.

    Parameters
    ----------
    kind : {"mfcc", "logmel"}
    sample_rate : int or "native"
        Audio is resampled to this rate (Hz); "native": each file keeps its
        own rate (frames then span ``hop_length`` samples of that rate, and
        the mel bands reach that rate's Nyquist frequency).
    n_fft, hop_length : int
        STFT window and hop (samples at ``sample_rate``).
    n_mfcc : int
        MFCC coefficients (``kind="mfcc"``).
    deltas : bool
        Append first and second MFCC deltas.
    n_mels : int
        Mel bands (log-mel features; also the filter bank of the MFCCs).
    stack : int
        Concatenate each frame with ``stack`` neighbours on each side
        (dimension times 2 stack + 1): high-dimensional context features.
    block_seconds : float
        Files longer than this are processed block by block.
    """

    kind: str = "mfcc"
    sample_rate: int | str = 22050
    n_fft: int = 2048
    hop_length: int = 512
    n_mfcc: int = 20
    deltas: bool = False
    n_mels: int = 64
    stack: int = 0
    block_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.kind not in ("mfcc", "logmel"):
            raise InvalidParameterError(f"features must be 'mfcc' or 'logmel', got {self.kind!r}")
        if isinstance(self.sample_rate, str) and self.sample_rate != "native":
            raise InvalidParameterError(f"sample_rate must be a rate in Hz or 'native', got {self.sample_rate!r}")
        for name in ("sample_rate", "n_fft", "hop_length", "n_mfcc", "n_mels"):
            if name == "sample_rate" and self.sample_rate == "native":
                continue
            if int(getattr(self, name)) < 1:
                raise InvalidParameterError(f"{name} must be >= 1")
        if self.stack < 0 or self.block_seconds <= 0:
            raise InvalidParameterError("stack must be >= 0 and block_seconds > 0")

    def rate_for(self, native: int) -> int:
        """The rate (Hz) features are computed at for a file recorded at ``native`` Hz."""
        return int(native) if self.sample_rate == "native" else int(self.sample_rate)

    @property
    def dim(self) -> int:
        """Dimension of one feature frame."""
        base = self.n_mfcc * (3 if self.deltas else 1) if self.kind == "mfcc" else self.n_mels
        return base * (2 * self.stack + 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return cls(**d)


def find_audio_files(paths: Iterable[Any], problems: list[tuple[str, str]] | None = None) -> list[Path]:
    """Audio files under ``paths`` (files or folders, walked recursively), sorted.

    Paths are resolved (absolute, symbolic links followed), so one file
    spelled two ways (relative and absolute, through a link) is listed once.
    What cannot be listed or read is left out and, when ``problems`` is a
    list, appended to it as ``(path, why)``: unreadable folders, dangling
    links, and entries with an audio extension that are not regular files
    (FIFOs, devices, folders).
    """
    found: set[Path] = set()

    def note(path: Any, why: str) -> None:
        if problems is not None:
            problems.append((str(path), why))

    def add(path: Path) -> None:
        try:
            info = path.stat()
        except FileNotFoundError:
            note(path, "dangling link" if path.is_symlink() else "vanished while listing")
            return
        except OSError as exc:
            note(path, f"cannot read: {exc.strerror or exc}")
            return
        if not stat.S_ISREG(info.st_mode):
            note(path, "not a regular file")
            return
        found.add(path.resolve())

    for p in map(Path, paths):
        if p.is_dir():
            for folder, subfolders, names in os.walk(p, onerror=lambda e: note(e.filename, f"unreadable folder: "
                                                                                   f"{e.strerror or e}")):
                subfolders.sort()
                for name in names:
                    if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                        add(Path(folder, name))
        elif p.exists() or p.is_symlink():
            add(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return sorted(found)


def native_rate(path: Any) -> int:
    """The sample rate (Hz) a file is recorded at (read from its header)."""
    _librosa()
    import soundfile as sf

    try:
        return int(sf.info(str(path)).samplerate)
    except (RuntimeError, ValueError, OSError, sf.LibsndfileError) as exc:
        raise AudioDecodeError(f"{path}: cannot decode audio: {exc}", path=str(path)) from exc


def load_audio(path: Any, sample_rate: int | str) -> np.ndarray:
    """Decodes a whole file to mono float32 at ``sample_rate`` (Hz; "native": the file's own).

    Raises
    ------
    AudioDecodeError
        If the file cannot be decoded or holds no samples.
    """
    librosa = _librosa()
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, OSError, sf.LibsndfileError) as exc:
        raise AudioDecodeError(f"{path}: cannot decode audio: {exc}", path=str(path)) from exc
    return _to_mono_rate(librosa, data, sr, sample_rate, path)


def _to_mono_rate(librosa, data: np.ndarray, sr: int, sample_rate: int | str, path: Any) -> np.ndarray:
    if data.size == 0:
        raise AudioDecodeError(f"{path}: the file holds no audio samples", path=str(path))
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(y)):
        raise AudioDecodeError(f"{path}: decoded samples contain NaN or infinity", path=str(path))
    if sample_rate != "native" and sr != sample_rate:
        y = librosa.resample(y, orig_sr=sr, target_sr=int(sample_rate), res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


def extract_features(y: np.ndarray, cfg: FeatureConfig, sr: int | None = None) -> np.ndarray:
    """Frame features of a mono signal: array (n_frames, cfg.dim), float32.

    ``sr``: the signal's rate (Hz), needed when ``cfg.sample_rate`` is "native".
    """
    librosa = _librosa()
    if sr is None:
        if cfg.sample_rate == "native":
            raise InvalidParameterError("with sample_rate='native', pass the signal's rate (sr)")
        sr = int(cfg.sample_rate)
    if cfg.kind == "mfcc":
        f = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                 n_mels=cfg.n_mels)
        if cfg.deltas:
            t = f.shape[1]
            if t >= 3:
                width = min(9, t if t % 2 else t - 1)
                d1 = librosa.feature.delta(f, width=width, order=1, mode="nearest")
                d2 = librosa.feature.delta(f, width=width, order=2, mode="nearest")
            else:
                d1 = d2 = np.zeros_like(f)
            f = np.vstack([f, d1, d2])
    else:
        mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                             n_mels=cfg.n_mels)
        # Fixed reference and no top_db: values comparable across files and blocks.
        f = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    frames = np.ascontiguousarray(f.T, dtype=np.float32)
    if cfg.stack:
        k = cfg.stack
        padded = np.pad(frames, ((k, k), (0, 0)), mode="edge")
        frames = np.hstack([padded[i : i + len(frames)] for i in range(2 * k + 1)])
    return frames


def iter_features(path: Any, cfg: FeatureConfig) -> Iterator[np.ndarray]:
    """Features of one file, one block at a time (whole file when short)."""
    librosa = _librosa()
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, ValueError, OSError, sf.LibsndfileError) as exc:
        raise AudioDecodeError(f"{path}: cannot decode audio: {exc}", path=str(path)) from exc
    if info.frames <= 0 and info.duration <= 0:
        raise AudioDecodeError(f"{path}: the file holds no audio samples", path=str(path))
    rate = cfg.rate_for(info.samplerate)
    if info.duration <= cfg.block_seconds:
        yield extract_features(load_audio(path, rate), cfg, rate)
        return
    block = int(cfg.block_seconds * info.samplerate)
    try:
        for data in sf.blocks(str(path), blocksize=block, dtype="float32", always_2d=True):
            if data.shape[0] == 0:
                continue
            yield extract_features(_to_mono_rate(librosa, data, info.samplerate, rate, path), cfg, rate)
    except (RuntimeError, ValueError, sf.LibsndfileError) as exc:
        raise AudioDecodeError(f"{path}: cannot decode audio: {exc}", path=str(path)) from exc
