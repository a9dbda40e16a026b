"""Real-audio benchmark: CompressiveKMeans / CompressiveGMM against
scikit-learn's KMeans and GaussianMixture (EM) on frames of real recordings.

Corpus (Debian bookworm packages, about 550 MB installed; nothing is
downloaded by this script)::

    apt-get install -y --no-install-recommends \\
        asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 \\
        asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 \\
        asterisk-core-sounds-ru-g722 ktuberling-data \\
        wesnoth-1.16-music freepats hydrogen-drumkits
    pip install librosa soundfile av      # av (PyAV) decodes the G.722 prompts

``python examples/benchmark_real_audio.py --check`` lists what is missing.

Sets (label = class; "file" = the unit of the 80/20 identification split):

- ``speech``: 11 speakers. Asterisk voice prompts (G.722, 16 kHz): Allison
  (US English and Mexican Spanish prompts, one speaker), June (Canadian
  French), Carlo (Italian), IvrvoiceRU (Russian); KTuberling word
  recordings (44.1 kHz), each language folder taken as one speaker: ca,
  da, fr, lt, nn, ru, uk.
  File = one prompt / one word.
- ``music``: 10 Wesnoth soundtrack pieces (orchestral recordings, ogg);
  label = track; file = a 20 s chunk of the track.
- ``instruments``: FreePats GUS patches (sampled real instruments), label =
  General MIDI family (piano, chromatic percussion, organ, guitar, bass,
  strings, ensemble, brass, reed, pipe); file = one sample waveform.
- ``drums``: Hydrogen drum kits (14 kits), label = instrument kind (kick,
  snare, hi-hat, tom, cymbal, hand percussion) parsed from the kit's
  instrument names; file = one sample.
- ``mixed``: equal parts of the four sets above; label = speech / music /
  instruments / drums.

Each set holds up to ``--max-frames`` frames (default 100000), split evenly
among its classes, drawn file by file in a fixed shuffled order (classes with
less material contribute all they have).

Features (librosa, all audio resampled to 16 kHz): 25 ms windows (400
samples, FFT 512), 10 ms hop, 64 mel bands (0-8 kHz), log power. MFCC:
20 coefficients (DCT-II of the log-mel spectrum) + deltas + delta-deltas
(width 9): d = 60; d = 20 is the static MFCC only. Log-mel: 64 bands stacked
over frames t-1, t, t+1: d = 192. Frames whose energy is 50 dB or more below
the file's loudest frame are dropped. Every feature is standardised over the
whole set (mean 0, variance 1) before anything else. Features are cached
(unstandardised) in ``~/.cache/sketchcore-bench/`` (``--cache-dir``).

Measurements (K = 10 unless ``--k``; library defaults unless
``--kmeans-kwargs`` / ``--gmm-kwargs``; rows shuffled before fitting unless
``--order file``):

- k-means: SSE of CompressiveKMeans(K) over that of KMeans(K, n_init=3) on
  the training frames (90%); adjusted Rand index of both against the labels;
  "density weight": the weight of the density model's draws against the
  sketch's stored rows in the last Lloyd step, as cross-validation chose it
  (``density_weight_``; inf: the density model's centroids were kept).
  ``--repeats R`` runs both estimators at R random states and reports means
  (ARI with its standard deviation): KMeans's own ARI moves by up to 0.09
  between random states on one set.
- GMM: mean log-likelihood per frame on a random 10% of frames held out,
  CompressiveGMM(K) against GaussianMixture(K, covariance_type="diag")
  (EM, reg_covar=1e-6, i.e. 1e-6 of each feature's global variance), and
  the anchor: EM on a uniform sample of 2m/d + n training frames (the memory
  of the sketch's 2m floats and of the n rows it stores, which the decoder
  adapts its mixture to; m = the sketch size CompressiveGMM used). "r" is
  the relevance of the MAP step the adaptation chose, after "scaled," when
  it also scaled the variances per feature (inf: no MAP step), or "refit"
  when cross-validation chose the mixture fitted to the stored rows alone
  (``--gmm-kwargs '{"sample_relevance": null}'`` decodes from the sketch alone);
  "decoder" is the decoder whose mixture was kept (``decoder_``).
  The smallest fitted variance of each model is reported as "min var".
- identification: per class, 80% of its files train one diagonal GMM
  (K = 16, ``--ident-k``); the remaining files' frames (concatenated in file
  order per class) are cut into 200-frame segments, each assigned to the
  model with the highest summed log-likelihood; accuracy with sketched
  GMMs against EM at d = 60 and d = 20. ``--repeats R``
  repeats it on R splits of the files (seeds ``--seed`` onwards) and pools
  the segments: one split holds 45-67 drum segments, so one segment moves
  the accuracy by 1.5-2.2 points.
- times (time.perf_counter): sketching, decoding and whole fit of the
  compressive estimators against KMeans(n_init=3) / GaussianMixture fits.
  The compressive estimators are given float32 rows, scikit-learn the same
  values as float64 (its default precision; EM can fail on float32 frames).
  Absolute times depend on the machine and its load: the header gives the
  CPU, the SIMD level and the load average.

Identification runs on ``speech`` and ``drums`` unless ``--ident-sets``.

Usage::

    python examples/benchmark_real_audio.py                     # full table
    python examples/benchmark_real_audio.py --quick             # about 3 minutes
    python examples/benchmark_real_audio.py --sets speech --dims 60 --only gmm \\
        --gmm-kwargs '{"n_replicates": 1}' --json /tmp/gmm.json
    python examples/benchmark_real_audio.py --sketch-factor 4 --only kmeans
    python examples/benchmark_real_audio.py --synthetic         # no corpus needed

Run time (``python examples/benchmark_real_audio.py``, 2-core AMD EPYC with
AVX-512, load average 4-9 from other jobs, sketchcore 0.1.0): full table
27 min, 19 of them in the compressive fits (CompressiveGMM at d = 192:
1.4-2.9 min per set; sketched identification on speech at d = 60: 2.6 min);
``--quick`` 3 min; extracting the features on first use about 4 min.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import struct
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SR = 16_000
N_FFT = 512
WIN = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 64
N_MFCC = 20
DELTA_WIDTH = 9
SILENCE_DB = 50.0
SEGMENT = 200
FEATURE_VERSION = 1
CACHE_CAP_PER_CLASS = 40_000  # frames kept per class in the cache
MAX_REPEATS = 100  # k-means runs per set and dimension (--repeats)
MUSIC_CHUNK_S = 20.0

SET_NAMES = ("speech", "music", "instruments", "drums", "mixed")
DEFAULT_IDENT_SETS = ("speech", "drums")

ASTERISK = Path("/usr/share/asterisk/sounds")
KTUBERLING = Path("/usr/share/ktuberling/sounds")
WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music")
FREEPATS = Path("/usr/share/midi/freepats/Tone_000")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")

# speaker label -> asterisk prompt folders (same voice in several languages)
ASTERISK_SPEAKERS = {
    "Allison (asterisk en-US/es-MX)": ["en_US_f_Allison", "es_MX_f_Allison"],
    "June (asterisk fr-CA)": ["fr_CA_f_June"],
    "Carlo (asterisk it-IT)": ["it_IT_m_Carlo"],
    "IvrvoiceRU (asterisk ru-RU)": ["ru_RU_f_IvrvoiceRU"],
}
ASTERISK_PACKAGES = {
    "en_US_f_Allison": "asterisk-core-sounds-en-g722",
    "es_MX_f_Allison": "asterisk-core-sounds-es-g722",
    "fr_CA_f_June": "asterisk-core-sounds-fr-g722",
    "it_IT_m_Carlo": "asterisk-core-sounds-it-g722",
    "ru_RU_f_IvrvoiceRU": "asterisk-core-sounds-ru-g722",
}
KTUBERLING_LANGS = ["ca", "da", "fr", "lt", "nn", "ru", "uk"]
MUSIC_TRACKS = [
    "battle", "breaking_the_chains", "elvish-theme", "heroes_rite", "knalgan_theme",
    "legends_of_the_north", "northerners", "nunc_dimittis", "the_deep_path", "traveling_minstrels",
]
GM_FAMILIES = ["piano", "chromatic percussion", "organ", "guitar", "bass",
               "strings", "ensemble", "brass", "reed", "pipe"]
DRUM_KINDS = [  # first match wins
    ("hand percussion", r"clap|cowbell|conga|bongo|cajon|djembe|maraca|tambourine|clave|woodblock|shaker|"
                        r"sangban|dunun|kenkeni|snap|guiro|agogo|cabasa|timbale|triangle"),
    ("hi-hat", r"\bhh\b|hat|hihat|hi-hat"),
    ("cymbal", r"crash|ride|cymbal|splash|china|cup"),
    ("tom", r"\btom|floor"),
    ("snare", r"snare|rim|stick"),
    ("kick", r"kick|bass ?drum|bassdrum|\bbd\b"),
]
APT_PACKAGES = {
    "speech": sorted(ASTERISK_PACKAGES.values()) + ["ktuberling-data"],
    "music": ["wesnoth-1.16-music"],
    "instruments": ["freepats"],
    "drums": ["hydrogen-drumkits"],
}


# ----------------------------------------------------------------- audio input


@dataclass
class Item:
    """One recording (or one waveform of a patch file)."""

    key: str  # unique, stable name
    label: str
    load: Callable[[], np.ndarray] = field(repr=False)  # mono float32 at SR
    chunk_s: float | None = None  # split into files of this length after extraction


def _resample(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
    return y.astype(np.float32, copy=False)


def load_soundfile(path: Path) -> np.ndarray:
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return _resample(y.mean(axis=1), sr)


def load_g722(path: Path) -> np.ndarray:
    import av

    with av.open(str(path), format="g722") as c:
        parts = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
        sr = c.streams.audio[0].sample_rate
    y = np.concatenate(parts).astype(np.float32) / 32768.0 if parts else np.zeros(0, np.float32)
    return _resample(y, sr)


def read_gus_patch(path: Path) -> list[tuple[str, int, np.ndarray]]:
    """Waveforms of a Gravis Ultrasound patch: (name, sample rate, samples)."""
    b = path.read_bytes()
    if not b.startswith(b"GF1PATCH1"):
        raise ValueError(f"{path}: not a GUS patch")
    n_waves = struct.unpack_from("<H", b, 85)[0]
    off = 129 + 63 + 47  # patch, instrument and layer headers
    out = []
    for _ in range(n_waves):
        name = b[off:off + 7].split(b"\0")[0].decode("latin-1")
        size, _ls, _le, rate = struct.unpack_from("<IIIH", b, off + 8)
        modes = b[off + 55]
        data = b[off + 96:off + 96 + size]
        off += 96 + size
        if modes & 1:  # 16-bit
            a = np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2" if modes & 2 else "<i2").astype(np.float32)
            a = (a - 32768.0 if modes & 2 else a) / 32768.0
        else:
            a = np.frombuffer(data, dtype="u1" if modes & 2 else "i1").astype(np.float32)
            a = (a - 128.0 if modes & 2 else a) / 128.0
        out.append((name, int(rate), a))
    return out


def _patch_loader(path: Path, index: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        _, rate, a = read_gus_patch(path)[index]
        return _resample(a, rate)

    return load


def items_speech() -> list[Item]:
    items = []
    for label, folders in ASTERISK_SPEAKERS.items():
        for folder in folders:
            for p in sorted((ASTERISK / folder).rglob("*.g722")):
                if "silence" in p.relative_to(ASTERISK / folder).parts:
                    continue
                items.append(Item(f"asterisk/{folder}/{p.relative_to(ASTERISK / folder)}", label,
                                  lambda p=p: load_g722(p)))
    for lang in KTUBERLING_LANGS:
        for p in sorted(q for q in (KTUBERLING / lang).iterdir() if q.suffix in (".wav", ".ogg", ".opus", ".flac")):
            items.append(Item(f"ktuberling/{lang}/{p.name}", f"ktuberling {lang}", lambda p=p: load_soundfile(p)))
    return items


def items_music() -> list[Item]:
    return [Item(f"wesnoth/{t}.ogg", t, lambda p=WESNOTH / f"{t}.ogg": load_soundfile(p), chunk_s=MUSIC_CHUNK_S)
            for t in MUSIC_TRACKS]


def items_instruments() -> list[Item]:
    items = []
    for p in sorted(FREEPATS.glob("*.pat")):
        prog = int(p.name[:3])
        if prog // 8 >= len(GM_FAMILIES):
            continue
        for i, (name, _, _) in enumerate(read_gus_patch(p)):
            items.append(Item(f"freepats/{p.stem}/{i}:{name}", GM_FAMILIES[prog // 8], _patch_loader(p, i)))
    return items


def drum_kind(name: str) -> str | None:
    s = name.lower()
    for kind, pattern in DRUM_KINDS:
        if re.search(pattern, s):
            return kind
    return None


def items_drums() -> list[Item]:
    items = []
    for xml in sorted(HYDROGEN.glob("*/drumkit.xml")):
        kit = xml.parent
        root = ET.parse(xml).getroot()
        for el in root.iter():
            if el.tag.split("}")[-1] != "instrument":
                continue
            name = next((c.text or "" for c in el if c.tag.split("}")[-1] == "name"), "")
            kind = drum_kind(name)
            if kind is None:
                continue
            files = {(c.text or "").strip() for c in el.iter() if c.tag.split("}")[-1] == "filename"}
            for fn in sorted(f for f in files if f):
                p = kit / fn
                if p.is_file():
                    items.append(Item(f"hydrogen/{kit.name}/{fn}", kind, lambda p=p: load_soundfile(p)))
    # a sample used by two instruments counts once
    seen: set[str] = set()
    return [it for it in items if not (it.key in seen or seen.add(it.key))]


ITEM_FACTORIES = {"speech": items_speech, "music": items_music, "instruments": items_instruments,
                  "drums": items_drums}


def missing_corpus() -> dict[str, list[str]]:
    """Set -> missing apt packages (empty lists when all is there)."""
    probes = {
        "music": [(WESNOTH / f"{t}.ogg", "wesnoth-1.16-music") for t in MUSIC_TRACKS],
        "instruments": [(FREEPATS / "000_Acoustic_Grand_Piano.pat", "freepats")],
        "drums": [(HYDROGEN / "ForzeeStereo" / "drumkit.xml", "hydrogen-drumkits")],
        "speech": [(ASTERISK / f, pkg) for f, pkg in ASTERISK_PACKAGES.items()]
        + [(KTUBERLING / lang, "ktuberling-data") for lang in KTUBERLING_LANGS],
    }
    return {s: sorted({pkg for path, pkg in probes[s] if not path.exists()}) for s in probes}


def missing_modules() -> list[str]:
    out = []
    for mod in ("librosa", "soundfile", "av", "sklearn"):
        try:
            __import__(mod)
        except ImportError:
            out.append({"sklearn": "scikit-learn"}.get(mod, mod))
    return out


# ---------------------------------------------------------------- features


def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=SR / 2)


def extract(y: np.ndarray, mel_basis: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mfcc60, logmel192, kept) for one recording at SR: float32 feature rows of
    the non-silent frames and the indices of those frames on the 10 ms grid."""
    import librosa
    import scipy.fft

    mel_basis = _mel_basis() if mel_basis is None else mel_basis
    y = np.asarray(y, dtype=np.float32)
    if len(y) < WIN:
        return np.empty((0, 3 * N_MFCC), np.float32), np.empty((0, 3 * N_MELS), np.float32), np.empty(0, np.int64)
    spec = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=WIN, window="hann", center=True)) ** 2
    energy = spec.sum(axis=0)
    mel = mel_basis @ spec
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)  # (64, T)
    n = logmel.shape[1]
    peak = energy.max()
    if n < DELTA_WIDTH or not peak > 0:
        return np.empty((0, 3 * N_MFCC), np.float32), np.empty((0, 3 * N_MELS), np.float32), np.empty(0, np.int64)
    keep = np.flatnonzero(10.0 * np.log10(np.maximum(energy, 1e-30) / peak) > -SILENCE_DB)
    mfcc = scipy.fft.dct(logmel, type=2, axis=0, norm="ortho")[:N_MFCC]
    d1 = librosa.feature.delta(mfcc, width=DELTA_WIDTH, order=1)
    d2 = librosa.feature.delta(mfcc, width=DELTA_WIDTH, order=2)
    f60 = np.concatenate([mfcc, d1, d2]).T
    padded = np.pad(logmel, ((0, 0), (1, 1)), mode="edge")
    f192 = np.concatenate([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]]).T  # t-1, t, t+1
    return f60[keep].astype(np.float32), f192[keep].astype(np.float32), keep


@dataclass
class FrameSet:
    name: str
    X60: np.ndarray  # raw (unstandardised) features
    X192: np.ndarray
    labels: np.ndarray  # int, index into classes
    files: np.ndarray  # int, index into file_names
    classes: list[str]
    file_names: list[str]

    def subset(self, rows: np.ndarray) -> FrameSet:
        return FrameSet(self.name, self.X60[rows], self.X192[rows], self.labels[rows], self.files[rows],
                        self.classes, self.file_names)


def build_frames(name: str, items: list[Item], cap_per_class: int, log=print) -> FrameSet:
    """Extracts items class by class, in a fixed shuffled order, until each class
    holds ``cap_per_class`` frames (whole files)."""
    mel_basis = _mel_basis()
    classes = sorted({it.label for it in items})
    rng = np.random.default_rng(12345)
    X60, X192, labels, files, file_names = [], [], [], [], []
    t0 = time.perf_counter()
    for ci, c in enumerate(classes):
        members = [it for it in items if it.label == c]
        order = rng.permutation(len(members))
        have = 0
        for j in order:
            if have >= cap_per_class:
                break
            it = members[j]
            f60, f192, kept = extract(it.load(), mel_basis)
            if not len(kept):
                continue
            if it.chunk_s:
                chunk = kept // int(round(it.chunk_s * SR / HOP))
                units = [(f"{it.key}#{k:03d}", chunk == k) for k in rng.permutation(np.unique(chunk))]
            else:
                units = [(it.key, slice(None))]
            for key, sel in units:
                if have >= cap_per_class:
                    break
                a, b = f60[sel], f192[sel]
                if not len(a):
                    continue
                X60.append(a)
                X192.append(b)
                labels.append(np.full(len(a), ci, np.int32))
                files.append(np.full(len(a), len(file_names), np.int32))
                file_names.append(key)
                have += len(a)
        log(f"  [{name}] {c}: {have} frames ({time.perf_counter() - t0:.0f} s)")
    return FrameSet(name, np.concatenate(X60), np.concatenate(X192), np.concatenate(labels),
                    np.concatenate(files), classes, file_names)


def _cache_path(cache_dir: Path, name: str, extra: str = "") -> Path:
    """Cache file for a set; ``extra`` fingerprints the set's recordings."""
    tag = json.dumps([FEATURE_VERSION, SR, N_FFT, WIN, HOP, N_MELS, N_MFCC, DELTA_WIDTH, SILENCE_DB,
                      CACHE_CAP_PER_CLASS, MUSIC_CHUNK_S, name, extra])
    return cache_dir / f"{name}-{hashlib.sha1(tag.encode()).hexdigest()[:10]}.npz"


def save_frames(path: Path, fs: FrameSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, X60=fs.X60, X192=fs.X192, labels=fs.labels, files=fs.files,
             classes=np.array(fs.classes), file_names=np.array(fs.file_names))
    os.replace(tmp, path)


def load_frames(path: Path, name: str) -> FrameSet:
    with np.load(path) as z:
        return FrameSet(name, z["X60"], z["X192"], z["labels"], z["files"],
                        [str(c) for c in z["classes"]], [str(f) for f in z["file_names"]])


def cached_frames(name: str, cache_dir: Path, log=print) -> FrameSet:
    items = ITEM_FACTORIES[name]()
    fingerprint = hashlib.sha1("\n".join(f"{it.key}\t{it.label}" for it in items).encode()).hexdigest()
    path = _cache_path(cache_dir, name, fingerprint)
    if path.exists():
        return load_frames(path, name)
    log(f"extracting features of '{name}' (cached in {path})")
    fs = build_frames(name, items, CACHE_CAP_PER_CLASS, log)
    save_frames(path, fs)
    return fs


def take_files(fs: FrameSet, per_class: int) -> FrameSet:
    """Whole files, in stored order, until each class has ``per_class`` frames."""
    rows = []
    for ci in range(len(fs.classes)):
        have = 0
        cls_rows = np.flatnonzero(fs.labels == ci)
        fids, first = np.unique(fs.files[cls_rows], return_index=True)
        for f in fids[np.argsort(first)]:
            if have >= per_class:
                break
            r = cls_rows[fs.files[cls_rows] == f]
            rows.append(r)
            have += len(r)
    return fs.subset(np.sort(np.concatenate(rows)))


def mixed_frames(parts: dict[str, FrameSet], per_part: int) -> FrameSet:
    """``per_part`` frames of each set (whole files, then a uniform subsample
    where whole files overshoot); label = the set."""
    X60, X192, labels, files, names = [], [], [], [], []
    rng = np.random.default_rng(54321)
    for i, (pname, fs) in enumerate(parts.items()):
        sub = take_files(fs, -(-per_part // len(fs.classes)))
        if len(sub.labels) > per_part:
            sub = sub.subset(np.sort(rng.choice(len(sub.labels), size=per_part, replace=False)))
        remap = {}
        for f in sub.files:
            if f not in remap:
                remap[f] = len(names) + len(remap)
        names.extend(f"{pname}:{fs.file_names[f]}" for f in remap)
        X60.append(sub.X60)
        X192.append(sub.X192)
        labels.append(np.full(len(sub.labels), i, np.int32))
        files.append(np.array([remap[f] for f in sub.files], np.int32))
    return FrameSet("mixed", np.concatenate(X60), np.concatenate(X192), np.concatenate(labels),
                    np.concatenate(files), list(parts), names)


def synthetic_frames(seed: int = 0) -> FrameSet:
    """Four classes of harmonic tones in noise (5 files of 3 s each): no corpus needed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(3 * SR)) / SR
    profiles = {"bright": 0.9, "dull": 0.3, "odd": 0.7, "noisy": 0.5}
    items = []
    for c, (name, decay) in enumerate(profiles.items()):
        for f in range(5):
            f0 = 110.0 * 2 ** (c / 2 + rng.uniform(0, 0.5))
            y = sum(decay ** h * np.sin(2 * np.pi * f0 * (h + 1) * t + rng.uniform(0, 6.28))
                    for h in range(8) if name != "odd" or h % 2 == 0)
            y = y * np.minimum(1.0, 4 * t) + (0.3 if name == "noisy" else 0.02) * rng.normal(size=len(t))
            y[: SR // 10] *= 1e-4  # a near-silent lead-in, dropped by the silence rule
            wave = y.astype(np.float32)
            items.append(Item(f"synthetic/{name}/{f}", name, lambda wave=wave: wave))
    return build_frames("synthetic", items, 10**9, log=lambda *a: None)


def standardise(X: np.ndarray) -> np.ndarray:
    X = X.astype(np.float64)
    X -= X.mean(axis=0)
    sd = X.std(axis=0)
    X /= np.where(sd > 0, sd, 1.0)
    return X.astype(np.float32)


# ---------------------------------------------------------------- measures


def assign(X: np.ndarray, centers: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, float]:
    """Each row's nearest centre and the sum of squared distances to it (float64)."""
    c = np.asarray(centers, np.float64)
    cc = (c * c).sum(1)
    labels = np.empty(len(X), dtype=np.intp)
    total = 0.0
    for i in range(0, len(X), chunk):
        x = np.asarray(X[i:i + chunk], np.float64)
        d2 = np.maximum((x * x).sum(1)[:, None] - 2 * x @ c.T + cc, 0)
        labels[i:i + chunk] = d2.argmin(1)
        total += float(d2.min(1).sum())
    return labels, total


def sse(X: np.ndarray, centers: np.ndarray) -> float:
    return assign(X, centers)[1]


def default_m(k: int, d: int, gmm: bool) -> int:
    """The library's default sketch size (5 K d for k-means, 5 (2d + 1) K for GMMs)."""
    return max(100, 5 * (2 * d + 1) * k if gmm else 5 * k * d)


def compressive_kwargs(base: dict, k: int, d: int, gmm: bool, factor: float) -> dict:
    kw = dict(base)
    if factor != 1.0 and "sketch_size" not in kw:
        kw["sketch_size"] = max(1, int(round(factor * default_m(k, d, gmm))))
    return kw


def fit_timed(est, X):
    """Seconds to fit; NaN (and a message on stderr) when the fit fails."""
    t0 = time.perf_counter()
    try:
        est.fit(X)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as e:
        print(f"    {type(est).__name__} failed: {e}", file=sys.stderr, flush=True)
        return float("nan")
    return time.perf_counter() - t0


def _ok(t: float) -> bool:
    return t == t


def run_kmeans(X, y, d, k, args, seed):
    """X: float32 training rows (scikit-learn gets the same values as float64).

    Both estimators run at random states ``seed`` to ``seed + args.repeats - 1``;
    the row holds the means over them (SSE ratio: each run against KMeans at the
    same random state) and, per measure, the list of the runs' values."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from sketchcore import CompressiveKMeans

    nan = float("nan")
    runs = []
    for state in range(seed, seed + args.repeats):
        ckm = CompressiveKMeans(k, random_state=state, **compressive_kwargs(args.kmeans_kwargs, k, d, False,
                                                                            args.sketch_factor))
        t_c = fit_timed(ckm, X)
        km = KMeans(n_clusters=k, n_init=3, random_state=state)
        t_k = fit_timed(km, X.astype(np.float64))
        s_k = sse(X, km.cluster_centers_) if _ok(t_k) else nan
        run = {"m": nan, "sse_ratio": nan, "ari_sketch": nan,
               "ari_kmeans": adjusted_rand_score(y, km.labels_) if _ok(t_k) else nan,
               "sse_anchor": nan, "ari_anchor": nan, "n_anchor": nan,
               "sketch_s": nan, "decode_s": nan, "fit_s": t_c, "kmeans_s": t_k, "density_weight": nan}
        if _ok(t_c):
            lab_c = ckm.labels_ if hasattr(ckm, "labels_") else ckm.predict(X)
            weight = ckm.density_weight_
            m = int(ckm.operator_.sketch_size)
            run.update(m=m, sse_ratio=sse(X, ckm.cluster_centers_) / s_k,
                       ari_sketch=adjusted_rand_score(y, lab_c), sketch_s=float(ckm.sketch_time_),
                       decode_s=float(ckm.decode_time_), density_weight=nan if weight is None else float(weight))
            # The anchor: KMeans on a uniform sample holding the memory of the sketch and its stored rows.
            stored = len(ckm.sketch_.samples) if ckm.sketch_.samples is not None else 0
            n_anchor = min(int(round(2 * m / d)) + stored, len(X))
            if n_anchor >= k and _ok(t_k):
                rows = np.random.default_rng(state + 1).choice(len(X), size=n_anchor, replace=False)
                anchor = KMeans(n_clusters=k, n_init=3, random_state=state)
                if _ok(fit_timed(anchor, X[rows].astype(np.float64))):
                    run.update(sse_anchor=sse(X, anchor.cluster_centers_) / s_k, n_anchor=n_anchor,
                               ari_anchor=adjusted_rand_score(y, assign(X, anchor.cluster_centers_)[0]))
        runs.append(run)
    row = {key: float(np.mean([r[key] for r in runs])) for key in runs[0] if key != "density_weight"}
    row["m"] = runs[0]["m"]
    row["runs"] = {key: [r[key] for r in runs] for key in runs[0]}
    return row


def run_gmm(X, Xte, d, k, args, seed):
    """X: float32 training rows; Xte: float64 held-out rows."""
    from sklearn.mixture import GaussianMixture

    from sketchcore import CompressiveGMM

    nan = float("nan")
    kw = compressive_kwargs(args.gmm_kwargs, k, d, True, args.sketch_factor)
    cg = CompressiveGMM(k, random_state=seed, **kw)
    t_c = fit_timed(cg, X)
    X64 = X.astype(np.float64)
    em = GaussianMixture(k, covariance_type="diag", random_state=seed)
    t_e = fit_timed(em, X64)
    m = int(cg.operator_.sketch_size) if _ok(t_c) else int(kw.get("sketch_size", default_m(k, d, True)))
    stored = len(cg.sketch_.samples) if _ok(t_c) and cg.sketch_.samples is not None else 0
    n_anchor = int(round(2 * m / d)) + stored
    ll_anchor = nan
    if n_anchor >= k:
        rows = np.random.default_rng(seed + 1).choice(len(X), size=min(n_anchor, len(X)), replace=False)
        anchor = GaussianMixture(k, covariance_type="diag", random_state=seed)
        if _ok(fit_timed(anchor, X64[rows])):
            ll_anchor = float(anchor.score(Xte))
    ll_c = float(cg.score(Xte)) if _ok(t_c) else nan
    ll_e = float(em.score(Xte)) if _ok(t_e) else nan
    return {
        "m": m,
        "ll_sketch": ll_c,
        "ll_em": ll_e,
        "delta": ll_c - ll_e,
        "ll_anchor": ll_anchor,
        "n_anchor": n_anchor,
        "delta_anchor": ll_c - ll_anchor,
        "relevance": cg.sample_relevance_ if _ok(t_c) else None,
        "variance_scaled": bool(_ok(t_c) and cg.feature_variance_scale_ is not None),
        "refit": bool(_ok(t_c) and cg.adaptation_ is not None and cg.adaptation_.refit),
        "decoder": cg.decoder_ if _ok(t_c) else None,
        "minvar_sketch": float(np.min(cg.covariances_)) if _ok(t_c) else nan,
        "minvar_em": float(np.min(em.covariances_)) if _ok(t_e) else nan,
        "sketch_s": float(cg.sketch_time_) if _ok(t_c) else nan,
        "decode_s": float(cg.decode_time_) if _ok(t_c) else nan,
        "fit_s": t_c,
        "em_s": t_e,
    }


def run_ident(X, fs: FrameSet, d, k, args, seed):
    """X: float32 features of the whole set (rows aligned with fs)."""
    from sklearn.mixture import GaussianMixture

    from sketchcore import CompressiveGMM

    rng = np.random.default_rng(seed + 2)
    train_rows, test_rows = [], []
    for ci in range(len(fs.classes)):
        rows = np.flatnonzero(fs.labels == ci)
        fids = np.unique(fs.files[rows])
        if len(fids) < 2:
            continue
        fids = fids[rng.permutation(len(fids))]
        n_test = max(1, int(round(0.2 * len(fids))))
        test = np.isin(fs.files[rows], fids[:n_test])
        train_rows.append((ci, rows[~test]))
        test_rows.append((ci, rows[test]))  # file order within the class is kept
    seg_rows, seg_labels = [], []
    for ci, rows in test_rows:
        n_seg = len(rows) // SEGMENT
        seg_rows.append(rows[: n_seg * SEGMENT])
        seg_labels.append(np.full(n_seg, ci))
    seg_rows, seg_labels = np.concatenate(seg_rows), np.concatenate(seg_labels)
    if not len(seg_labels):
        raise ValueError(f"identification on '{fs.name}': no held-out segment of {SEGMENT} frames")
    Xt = X[seg_rows].astype(np.float64)
    scores = {"sketch": [], "em": []}
    times = {"sketch": 0.0, "em": 0.0, "sketch_sketch": 0.0, "sketch_decode": 0.0}
    m = None
    for _, rows in train_rows:
        Xc = X[rows][rng.permutation(len(rows))] if args.order == "shuffled" else X[rows]
        cg = CompressiveGMM(k, random_state=seed, **compressive_kwargs(args.gmm_kwargs, k, d, True,
                                                                      args.sketch_factor))
        em = GaussianMixture(k, covariance_type="diag", random_state=seed)
        ok = {}
        for key, model, data in (("sketch", cg, Xc), ("em", em, Xc.astype(np.float64))):
            t = fit_timed(model, data)
            ok[key] = _ok(t)
            times[key] += t
            # a failed fit scores -inf: its class is never chosen
            scores[key].append(model.score_samples(Xt).reshape(-1, SEGMENT).sum(1) if ok[key]
                               else np.full(len(seg_labels), -np.inf))
        if ok["sketch"]:
            times["sketch_sketch"] += cg.sketch_time_
            times["sketch_decode"] += cg.decode_time_
            m = int(cg.operator_.sketch_size)
    classes = np.array([ci for ci, _ in train_rows])
    acc = {key: float(np.mean(classes[np.argmax(np.stack(s, 1), 1)] == seg_labels)) for key, s in scores.items()}
    return {
        "classes": len(train_rows),
        "train_frames": int(sum(len(r) for _, r in train_rows)),
        "segments": int(len(seg_labels)),
        "m": m,
        "acc_sketch": acc["sketch"],
        "acc_em": acc["em"],
        "sketch_s": times["sketch_sketch"],
        "decode_s": times["sketch_decode"],
        "fit_s": times["sketch"],
        "em_s": times["em"],
    }


def run_ident_splits(X, fs: FrameSet, d, k, args, seed):
    """:func:`run_ident` on ``args.repeats`` splits of the files (seeds ``seed``
    onwards), the held-out segments pooled: accuracy = correct segments over
    all segments of all splits; times summed; per-split accuracies in "runs"."""
    runs = [run_ident(X, fs, d, k, args, s) for s in range(seed, seed + args.repeats)]
    segments = sum(r["segments"] for r in runs)
    row = {key: sum(r[key] for r in runs) for key in ("segments", "sketch_s", "decode_s", "fit_s", "em_s")}
    row.update(classes=runs[0]["classes"], train_frames=runs[0]["train_frames"], m=runs[0]["m"],
               acc_sketch=sum(r["acc_sketch"] * r["segments"] for r in runs) / segments,
               acc_em=sum(r["acc_em"] * r["segments"] for r in runs) / segments)
    row["runs"] = {key: [r[key] for r in runs] for key in ("segments", "acc_sketch", "acc_em")}
    return row


# ---------------------------------------------------------------- reporting


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sklearn

    import sketchcore

    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "simd_level": sketchcore.simd_level(),
        "sketchcore": sketchcore.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "python": platform.python_version(),
    }
    try:
        import librosa

        info["librosa"] = librosa.__version__
    except ImportError:
        pass
    return info


def md_table(headers: list[str], rows: list[list]) -> str:
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            if v != v:
                return "-"
            if abs(v) >= 100:
                return f"{v:.1f}"
            return f"{v:.3f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2g}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _spread(row: dict, key: str) -> str:
    """Mean of a k-means measure, +- its standard deviation over the runs when there are several."""
    values = np.asarray(row["runs"][key], dtype=float)
    return f"{values.mean():.3f}" + (f" +- {values.std():.3f}" if len(values) > 1 else "")


def _per_split(row: dict) -> str:
    """Sketch / EM identification accuracy of each split."""
    runs = row["runs"]
    return " ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(runs["acc_sketch"], runs["acc_em"], strict=True))


def _weight(w: float) -> str:
    return "-" if w != w else ("inf" if np.isinf(w) else f"{w:g}")


def report(res: dict) -> str:
    out = [f"# Real-audio benchmark\n\ncommand: `{res['meta']['command']}`  ",
           "machine: " + ", ".join(f"{k} {v}" for k, v in res["meta"]["machine"].items()) + "  ",
           f"date: {res['meta']['date']}; total {res['meta']['total_s']:.0f} s; load average at start "
           f"{res['meta']['load_average_at_start']}, at end {res['meta']['load_average_at_end']}; "
           f"max frames per set {res['meta']['max_frames']}; seed {res['meta']['seed']}; "
           f"K = {res['meta']['k']}, identification K = {res['meta']['ident_k']}; rows {res['meta']['order']}; "
           f"sketch factor {res['meta']['sketch_factor']}; CompressiveKMeans kwargs {res['meta']['kmeans_kwargs']}; "
           f"CompressiveGMM kwargs {res['meta']['gmm_kwargs']}\n"]
    out.append("## Sets\n")
    out.append(md_table(["set", "classes", "files", "frames", "frames/class (min-max)"],
                        [[s["name"], s["classes"], s["files"], s["frames"], f"{s['min_class']}-{s['max_class']}"]
                         for s in res["sets"]]))
    if res["kmeans"]:
        out.append(f"\n## k-means (K = {res['meta']['k']}, training frames = 90%)\n")
        repeats = res["meta"].get("repeats", 1)
        if repeats > 1:
            out.append(f"Means over random states {res['meta']['seed']} to {res['meta']['seed'] + repeats - 1} "
                       "(both estimators); ARI as mean +- standard deviation over them.\n")
        out.append(md_table(
            ["set", "d", "N", "m", "SSE ratio", "ARI sketch", "ARI KMeans", "ARI sketch - KMeans",
             "SSE anchor (n)", "ARI anchor", "density weight", "sketch s", "decode s", "fit s", "KMeans s"],
            [[r["set"], r["d"], r["n"], r["m"], r["sse_ratio"], _spread(r, "ari_sketch"), _spread(r, "ari_kmeans"),
              r["ari_sketch"] - r["ari_kmeans"],
              f"{r.get('sse_anchor', float('nan')):.3f} ({r.get('n_anchor', 0):.0f})",
              r.get("ari_anchor", float("nan")), " ".join(_weight(w) for w in r["runs"]["density_weight"]),
              r["sketch_s"], r["decode_s"], r["fit_s"], r["kmeans_s"]] for r in res["kmeans"]]))
    if res["gmm"]:
        out.append(f"\n## diagonal GMM (K = {res['meta']['k']}; mean held-out log-likelihood per frame, nats)\n")
        out.append(md_table(
            ["set", "d", "N", "m", "LL sketch", "LL EM", "sketch - EM", "LL anchor (n)", "sketch - anchor",
             "decoder", "r", "min var sketch / EM", "sketch s", "decode s", "fit s", "EM s"],
            [[r["set"], r["d"], r["n"], r["m"], r["ll_sketch"], r["ll_em"], r["delta"],
              f"{r['ll_anchor']:.2f} ({r['n_anchor']})", r["delta_anchor"], r.get("decoder") or "-",
              "refit" if r.get("refit") else ("scaled, " if r.get("variance_scaled") else "") + str(r.get("relevance")),
              f"{r['minvar_sketch']:.2g} / {r['minvar_em']:.2g}", r["sketch_s"], r["decode_s"], r["fit_s"],
              r["em_s"]] for r in res["gmm"]]))
    if res["ident"]:
        out.append(f"\n## identification (one K = {res['meta']['ident_k']} GMM per class, {SEGMENT}-frame segments "
                   "of held-out files)\n")
        repeats = res["meta"].get("repeats", 1)
        if repeats > 1:
            out.append(f"Segments pooled over {repeats} splits of the files (seeds {res['meta']['seed']} to "
                       f"{res['meta']['seed'] + repeats - 1}); \"per split\": sketch / EM accuracy of each.\n")
        out.append(md_table(
            ["set", "d", "classes", "train frames", "segments", "m", "acc sketch", "acc EM", "per split",
             "sketch s", "decode s", "fit s", "EM s"],
            [[r["set"], r["d"], r["classes"], r["train_frames"], r["segments"], r["m"], r["acc_sketch"],
              r["acc_em"], _per_split(r),
              r["sketch_s"], r["decode_s"], r["fit_s"], r["em_s"]] for r in res["ident"]]))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main


def _repeats(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_REPEATS:
        raise argparse.ArgumentTypeError(f"--repeats must be between 1 and {MAX_REPEATS}")
    return value


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", choices=SET_NAMES, default=list(SET_NAMES))
    ap.add_argument("--dims", nargs="+", type=int, choices=(20, 60, 192), default=None,
                    help="feature dimensions for k-means / GMM (default 60 192; --quick: 60)")
    ap.add_argument("--ident-sets", nargs="+", choices=SET_NAMES, default=None,
                    help=f"sets for identification (default {' '.join(DEFAULT_IDENT_SETS)}, among --sets)")
    ap.add_argument("--ident-dims", nargs="+", type=int, choices=(20, 60, 192), default=None,
                    help="feature dimensions for identification (default 60 20; --quick: 20)")
    ap.add_argument("--only", nargs="+", choices=("kmeans", "gmm", "ident"), default=["kmeans", "gmm", "ident"])
    ap.add_argument("--k", type=int, default=10, help="components for k-means and GMM (default 10)")
    ap.add_argument("--ident-k", type=int, default=16, help="components per class model (default 16)")
    ap.add_argument("--max-frames", type=int, default=None, help="frames per set (default 100000; --quick 20000)")
    ap.add_argument("--quick", action="store_true",
                    help="20000 frames per set, d = 60 only, identification at d = 20 only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=_repeats, default=1,
                    help="k-means: runs of both estimators at random states seed, seed + 1, ... (default 1), "
                         "the table shows means; identification: as many splits of the files, segments pooled")
    ap.add_argument("--sketch-factor", type=float, default=1.0, help="multiplies the default sketch sizes")
    ap.add_argument("--kmeans-kwargs", type=json.loads, default={}, help="JSON dict for CompressiveKMeans")
    ap.add_argument("--gmm-kwargs", type=json.loads, default={}, help="JSON dict for CompressiveGMM")
    ap.add_argument("--order", choices=("shuffled", "file"), default="shuffled",
                    help="row order given to the estimators (file: as extracted, file after file)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "sketchcore-bench")
    ap.add_argument("--check", action="store_true", help="list missing packages and exit")
    ap.add_argument("--synthetic", action="store_true", help="a set of synthetic tones instead of the corpus")
    a = ap.parse_args(argv)
    if a.dims is None:
        a.dims = [60] if a.quick else [60, 192]
    if a.ident_dims is None:
        a.ident_dims = [20] if a.quick else [60, 20]
    if a.max_frames is None:
        a.max_frames = 20_000 if a.quick else 100_000
    if a.ident_sets is None:
        a.ident_sets = ["synthetic"] if a.synthetic else [s for s in DEFAULT_IDENT_SETS if s in a.sets]
    for name in ("kmeans_kwargs", "gmm_kwargs"):
        if not isinstance(getattr(a, name), dict):
            ap.error(f"--{name.replace('_', '-')} must be a JSON object")
    return a


def install_hint(missing_pkgs: list[str], missing_mods: list[str]) -> str:
    lines = []
    if missing_pkgs:
        lines.append("missing Debian packages: " + " ".join(missing_pkgs))
        lines.append("  apt-get install -y --no-install-recommends " + " ".join(missing_pkgs))
    if missing_mods:
        lines.append("missing Python modules: " + " ".join(missing_mods))
        lines.append("  pip install " + " ".join(missing_mods))
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)

    def log(*a):
        print(*a, file=sys.stderr, flush=True)

    if args.check or not args.synthetic:
        miss = missing_corpus()
        wanted = set(args.sets) if not args.check else set(SET_NAMES)
        if "mixed" in wanted:
            wanted |= set(ITEM_FACTORIES)
        pkgs = sorted({p for s in wanted & set(miss) for p in miss[s]})
        mods = missing_modules()
        if args.check:
            print(install_hint(pkgs, mods) or "all corpus packages and modules are installed")
            return {"missing_packages": pkgs, "missing_modules": mods}
        if pkgs or mods:
            sys.exit(install_hint(pkgs, mods))

    t_start = time.perf_counter()
    res = {"meta": {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name if argv is None else
                                                        "benchmark_real_audio.py"] + list(sys.argv[1:] if argv is None
                                                                                         else argv)),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "seed": args.seed, "repeats": args.repeats, "k": args.k, "ident_k": args.ident_k, "order": args.order,
        "sketch_factor": args.sketch_factor, "kmeans_kwargs": args.kmeans_kwargs, "gmm_kwargs": args.gmm_kwargs,
        "max_frames": args.max_frames,
    }, "sets": [], "kmeans": [], "gmm": [], "ident": []}
    log("machine: " + ", ".join(f"{k} {v}" for k, v in res["meta"]["machine"].items()))
    log("command: " + res["meta"]["command"])

    if args.synthetic:
        sets = {"synthetic": synthetic_frames(args.seed)}
    else:
        raw = {}
        for name in [s for s in ITEM_FACTORIES if s in args.sets or "mixed" in args.sets]:
            raw[name] = cached_frames(name, args.cache_dir, log)
        sets = {}
        for name in args.sets:
            if name == "mixed":
                sets[name] = mixed_frames(raw, args.max_frames // len(raw))
            else:
                sets[name] = take_files(raw[name], -(-args.max_frames // len(raw[name].classes)))

    for name, fs in sets.items():
        counts = np.bincount(fs.labels, minlength=len(fs.classes))
        res["sets"].append({"name": name, "classes": len(fs.classes), "files": int(len(np.unique(fs.files))),
                            "frames": int(len(fs.labels)), "min_class": int(counts.min()),
                            "max_class": int(counts.max()),
                            "per_class": {c: int(n) for c, n in zip(fs.classes, counts, strict=True)}})
        log(f"set {name}: {len(fs.classes)} classes, {len(np.unique(fs.files))} files, {len(fs.labels)} frames")
        X60, X192 = standardise(fs.X60), standardise(fs.X192)
        feats = {60: X60, 20: np.ascontiguousarray(X60[:, :N_MFCC]), 192: X192}
        rng = np.random.default_rng(args.seed)
        n = len(fs.labels)
        perm = rng.permutation(n)
        held = np.zeros(n, bool)
        held[perm[: n // 10]] = True
        train = perm[n // 10:] if args.order == "shuffled" else np.flatnonzero(~held)
        test = np.flatnonzero(held)
        for d in args.dims:
            X = feats[d]
            Xtr, ytr = X[train], fs.labels[train]
            if "kmeans" in args.only:
                log(f"  k-means {name} d={d} ...")
                r = {"set": name, "d": d, "n": len(Xtr), **run_kmeans(Xtr, ytr, d, args.k, args, args.seed)}
                res["kmeans"].append(r)
                log(f"    SSE ratio {r['sse_ratio']:.3f}, ARI {r['ari_sketch']:.3f} / {r['ari_kmeans']:.3f}, "
                    f"fit {r['fit_s']:.1f} s / {r['kmeans_s']:.1f} s")
            if "gmm" in args.only:
                log(f"  GMM {name} d={d} ...")
                r = {"set": name, "d": d, "n": len(Xtr),
                     **run_gmm(Xtr, X[test].astype(np.float64), d, args.k, args, args.seed)}
                res["gmm"].append(r)
                log(f"    LL {r['ll_sketch']:.3f} / EM {r['ll_em']:.3f} / anchor {r['ll_anchor']:.3f}, "
                    f"fit {r['fit_s']:.1f} s / {r['em_s']:.1f} s")
        if "ident" in args.only and name in args.ident_sets:
            for d in args.ident_dims:
                log(f"  identification {name} d={d} ...")
                r = {"set": name, "d": d, **run_ident_splits(feats[d], fs, d, args.ident_k, args, args.seed)}
                res["ident"].append(r)
                log(f"    accuracy {r['acc_sketch']:.3f} / EM {r['acc_em']:.3f} on {r['segments']} segments, "
                    f"fit {r['fit_s']:.1f} s / {r['em_s']:.1f} s")
    res["meta"]["total_s"] = time.perf_counter() - t_start
    res["meta"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    text = report(res)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1, default=float))
    return res


if __name__ == "__main__":
    main()
