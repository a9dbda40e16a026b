"""The built-in main job: a synthetic audio corpus, sketched and modelled.

:func:`synthesize_corpus` writes a deterministic corpus of WAV files --
harmonic notes of several timbres and pitches, noise bursts, speech-like
vowel sequences (a glottal pulse train through gliding formant resonators)
and silences. :func:`run_demo` sketches it with the audio pipeline, fits
CompressiveKMeans and CompressiveGMM from the sketch, compares them with
scikit-learn's KMeans and GaussianMixture fitted on all the frames in memory,
prints a table and writes a figure.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from sketchcore import _core
from sketchcore.exceptions import BackendUnavailableError
from sketchcore.learning.estimators import CompressiveGMM, CompressiveKMeans

__all__ = ["synthesize_corpus", "run_demo"]

SAMPLE_RATE = 16_000
VOWELS = {"a": (700, 1220, 2600), "i": (280, 2250, 2900), "u": (310, 870, 2250), "e": (400, 2000, 2550)}


def _envelope(n: int, attack: float = 0.02, release: float = 0.08) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    dur = n / SAMPLE_RATE
    return np.clip(np.minimum(t / attack, (dur - t) / release), 0.0, 1.0)


def _note(rng: np.random.Generator, n: int, f0: float, timbre: str) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    y = np.zeros(n)
    for k in range(1, 30):
        f = k * f0
        if f > SAMPLE_RATE / 2 - 500:
            break
        if timbre == "bright":
            amp = 1.0 / k
        elif timbre == "mellow":
            amp = 1.0 / k**2.5
        else:  # "hollow": odd harmonics only (clarinet-like)
            amp = (1.0 / k) if k % 2 else 0.0
        y += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return 0.3 * y / np.max(np.abs(y)) * _envelope(n)


def _resonate(x: np.ndarray, freqs: np.ndarray, bandwidth: float) -> np.ndarray:
    """Time-varying two-pole resonator (a formant)."""
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    a1 = -2 * r * np.cos(2 * np.pi * freqs / SAMPLE_RATE)
    a2 = r * r
    y = np.zeros_like(x)
    y1 = y2 = 0.0
    for i in range(len(x)):  # short signals; clarity over speed
        y0 = x[i] - a1[i] * y1 - a2 * y2
        y[i] = y0
        y2, y1 = y1, y0
    return y


def _vowels(rng: np.random.Generator, n: int) -> np.ndarray:
    """Speech-like: a jittered glottal pulse train through gliding formants."""
    f0 = rng.uniform(95, 220) * (1 + 0.05 * np.sin(2 * np.pi * 3 * np.arange(n) / SAMPLE_RATE))
    phase = np.cumsum(f0 / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    source = pulses + 0.02 * rng.normal(size=n)
    keys = rng.choice(list(VOWELS), size=3)
    targets = np.array([VOWELS[k] for k in keys], dtype=float)
    pos = np.linspace(0, len(keys) - 1, n)
    tracks = np.stack([np.interp(pos, np.arange(len(keys)), targets[:, j]) for j in range(3)])
    y = sum(_resonate(source, tracks[j], bw) for j, bw in enumerate((80, 100, 140)))
    return 0.3 * y / np.max(np.abs(y)) * _envelope(n, 0.03, 0.05)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    white = rng.normal(size=n)
    if rng.uniform() < 0.5:  # pink-ish: integrate a little
        white = np.cumsum(white)
        white -= np.convolve(white, np.ones(200) / 200, mode="same")
    bursts = np.zeros(n)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.1, 0.4) * SAMPLE_RATE)
        bursts[pos : pos + length] = _envelope(min(length, n - pos), 0.005, 0.05)
        pos += length + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
    return 0.2 * white / np.max(np.abs(white)) * bursts


def synthesize_corpus(folder: Any, n_files: int = 36, seconds: float = 8.0, seed: int = 0) -> list[Path]:
    """Writes ``n_files`` deterministic WAV files of ``seconds`` each; returns their paths."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_files):
        n_total = int(seconds * SAMPLE_RATE)
        parts, used = [], 0
        while used < n_total:
            n = min(int(rng.uniform(0.5, 2.0) * SAMPLE_RATE), n_total - used)
            kind = rng.choice(["note", "note", "vowels", "noise", "silence"])
            if kind == "note":
                f0 = rng.choice([110.0, 165.0, 220.0, 330.0, 440.0, 660.0])
                parts.append(_note(rng, n, f0, rng.choice(["bright", "mellow", "hollow"])))
            elif kind == "vowels":
                parts.append(_vowels(rng, n))
            elif kind == "noise":
                parts.append(_noise(rng, n))
            else:  # room tone: quiet, slowly varying coloured noise
                tone = np.cumsum(rng.normal(size=n))
                tone -= np.convolve(tone, np.ones(400) / 400, mode="same")
                level = 10 ** (rng.uniform(-3.0, -2.0)) * (1 + 0.5 * np.sin(np.linspace(0, 6, n)))
                parts.append(level * tone / np.max(np.abs(tone)))
            used += n
        y = np.concatenate(parts).astype(np.float32)
        path = folder / f"recording_{i:03d}.wav"
        sf.write(path, y, SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def _rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak(fn):
    """(result, seconds, peak resident-memory growth in MiB during the step),
    sampled every 5 ms (Linux; NaN elsewhere)."""
    import threading

    start = _rss_mib()
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss_mib())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        stop.set()
        thread.join()
    return out, seconds, max(peak[0], _rss_mib()) - start


def run_demo(out: Any = "sketchcore-demo", *, quick: bool = False, k: int = 8, seed: int = 0,
             progress: bool = True) -> dict:
    """The main job end to end; returns the measured figures."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    from sketchcore.audio.features import FeatureConfig, _librosa, extract_features, load_audio
    from sketchcore.audio.pipeline import sketch_corpus

    _librosa()  # a clear error naming the 'audio' extra if it is missing
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError("the demo's figure needs matplotlib: pip install 'sketchcore[audio]'") from exc
    out = Path(out)
    n_files, seconds = (8, 4.0) if quick else (36, 8.0)
    print(f"sketchcore {_core.__version__} demo (SIMD {_core.simd_level()}): "
          f"synthesising {n_files} recordings of {seconds:g} s in {out}/corpus ...", flush=True)
    paths = synthesize_corpus(out / "corpus", n_files, seconds, seed)
    cfg = FeatureConfig(kind="logmel", sample_rate=SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=40)
    d = cfg.dim
    extract_features(np.zeros(4096, np.float32), cfg)  # warm up librosa before measuring
    sketch_file = out / "corpus.sketch"
    if sketch_file.exists():
        sketch_file.unlink()

    (sk, report), t_sketch, mem_sketch = _peak(lambda: sketch_corpus(
        [out / "corpus"], sketch_file, features=cfg, sketch_size=5 * (2 * d + 1) * k, seed=seed, progress=progress))
    print(report.summary())
    std_sketch = sk.standardized()
    mean, std = std_sketch.operator.mean, std_sketch.operator.std

    km, t_km, mem_km = _peak(lambda: CompressiveKMeans(k, random_state=seed).fit_sketch(std_sketch))
    gmm, t_gmm, mem_gmm = _peak(lambda: CompressiveGMM(k, random_state=seed).fit_sketch(std_sketch))

    # The comparison needs every frame in memory: that is what sketching avoids.
    def load_frames():
        return np.concatenate([extract_features(load_audio(p, cfg.sample_rate), cfg) for p in paths])

    frames, t_load, mem_load = _peak(load_frames)
    U = (frames - mean) / std
    ref_km, t_ref_km, mem_ref_km = _peak(lambda: KMeans(k, n_init=10, random_state=seed).fit(U))
    ref_gmm, t_ref_gmm, mem_ref_gmm = _peak(
        lambda: GaussianMixture(k, covariance_type="diag", n_init=3, random_state=seed).fit(U))
    sse_ratio = -km.score(U) / ref_km.inertia_
    ll_ours, ll_ref = gmm.score(U), ref_gmm.score(U)

    rows = [
        ("sketch corpus (one pass)", f"{t_sketch:.2f}", f"{mem_sketch:.1f}",
         f"{report.frames} frames, m = {sk.sketch_size}"),
        ("CompressiveKMeans decode", f"{t_km:.2f}", f"{mem_km:.1f}", f"SSE ratio to KMeans {sse_ratio:.4f}"),
        ("CompressiveGMM decode", f"{t_gmm:.2f}", f"{mem_gmm:.1f}", f"log-lik/frame {ll_ours:.3f}"),
        ("load all frames (sklearn)", f"{t_load:.2f}", f"{mem_load:.1f}", f"{U.shape[0]} x {U.shape[1]} in memory"),
        ("sklearn KMeans n_init=10", f"{t_ref_km:.2f}", f"{mem_ref_km:.1f}", f"SSE {ref_km.inertia_:.4g}"),
        ("sklearn GaussianMixture", f"{t_ref_gmm:.2f}", f"{mem_ref_gmm:.1f}", f"log-lik/frame {ll_ref:.3f}"),
    ]
    widths = [max(len(r[i]) for r in rows + [("step", "time (s)", "peak MiB", "result")]) for i in range(4)]
    header = ("step", "time (s)", "peak MiB", "result")
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print("(peak MiB: growth of the process's resident memory during the step)")

    figure = out / "demo.png"
    _figure(figure, km, mean, std, paths[:4], cfg)
    print(f"\nfigure: {figure}\nsketch: {sketch_file}")
    return {"sse_ratio": sse_ratio, "loglik": ll_ours, "loglik_em": ll_ref, "figure": figure, "frames": report.frames}


def _figure(path: Path, km, mean, std, paths, cfg) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchcore.audio.features import extract_features, load_audio

    centers = km.cluster_centers_ * std + mean  # back to log-mel dB
    order = np.argsort(-km.weights_)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 1.4]})
    for c in order:
        ax1.plot(centers[c], label=f"cluster {c} ({100 * km.weights_[c]:.0f}%)", lw=1.5)
    ax1.set(xlabel="mel band", ylabel="log power (dB)", title="Cluster centroids as spectral shapes")
    ax1.legend(fontsize=7, ncol=2)
    rows = []
    for p in paths:
        f = extract_features(load_audio(p, cfg.sample_rate), cfg)
        rows.append(km.predict((f - mean) / std))
    width = min(len(r) for r in rows)
    img = np.stack([r[:width] for r in rows])
    ax2.imshow(img, aspect="auto", interpolation="nearest", cmap="tab10", vmin=0, vmax=9,
               extent=[0, width * cfg.hop_length / cfg.sample_rate, len(rows) - 0.5, -0.5])
    ax2.set_yticks(range(len(rows)), [Path(p).name for p in paths], fontsize=7)
    ax2.set(xlabel="time (s)", title="Cluster occupancy over time")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
