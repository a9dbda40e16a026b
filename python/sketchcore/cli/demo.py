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

__all__ = ["synthesize_corpus", "corpus_truth", "run_demo", "demo_figure", "TRUTH_CLASSES"]

#: The kinds of sound the synthetic corpus is made of (its ground truth).
TRUTH_CLASSES = ("note, bright", "note, mellow", "note, hollow", "vowels", "noise", "silence")
#: Ground-truth segments of the corpus, written beside the recordings.
TRUTH_FILE = "truth.json"

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
    """Writes ``n_files`` deterministic WAV files of ``seconds`` each; returns their paths.

    The true segments (``[start s, end s, class]``, classes from
    :data:`TRUTH_CLASSES`) go to ``truth.json`` in the folder (:func:`corpus_truth`).
    """
    import json

    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    truth: dict[str, list] = {}
    for i in range(n_files):
        n_total = int(seconds * SAMPLE_RATE)
        parts, used = [], 0
        segments: list = []
        while used < n_total:
            n = min(int(rng.uniform(0.5, 2.0) * SAMPLE_RATE), n_total - used)
            kind = str(rng.choice(["note", "note", "vowels", "noise", "silence"]))
            label = kind
            if kind == "note":
                f0 = rng.choice([110.0, 165.0, 220.0, 330.0, 440.0, 660.0])
                timbre = str(rng.choice(["bright", "mellow", "hollow"]))
                label = f"note, {timbre}"
                parts.append(_note(rng, n, f0, timbre))
            elif kind == "vowels":
                parts.append(_vowels(rng, n))
            elif kind == "noise":
                parts.append(_noise(rng, n))
            else:  # room tone: quiet, slowly varying coloured noise
                tone = np.cumsum(rng.normal(size=n))
                tone -= np.convolve(tone, np.ones(400) / 400, mode="same")
                level = 10 ** (rng.uniform(-3.0, -2.0)) * (1 + 0.5 * np.sin(np.linspace(0, 6, n)))
                parts.append(level * tone / np.max(np.abs(tone)))
            segments.append([used / SAMPLE_RATE, (used + n) / SAMPLE_RATE, label])
            used += n
        y = np.concatenate(parts).astype(np.float32)
        path = folder / f"recording_{i:03d}.wav"
        sf.write(path, y, SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
        truth[path.name] = segments
    (folder / TRUTH_FILE).write_text(json.dumps(truth, indent=1))
    return paths


def corpus_truth(folder: Any) -> dict[str, list]:
    """The true segments of a corpus from :func:`synthesize_corpus`: file name ->
    ``[[start s, end s, class], ...]``."""
    import json

    return json.loads((Path(folder) / TRUTH_FILE).read_text())


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
             progress: bool = True, command: str | None = None) -> dict:
    """The main job end to end; returns the measured figures (and the figure's
    Figure object as ``"fig"``). ``command``: how the run was started, for the
    figure's footer (default: the equivalent ``sketchcore demo`` command)."""
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
    comparison = [(r[0], float(r[1]), float(r[2]), r[3]) for r in rows]
    fig = demo_figure(km, mean, std, paths[:4], cfg, corpus_truth(out / "corpus"), comparison,
                      footer=f"{command or _command(out, quick, k, seed)}  |  {_machine()}")
    fig.savefig(figure, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"\nfigure: {figure}\nsketch: {sketch_file}")
    return {"sse_ratio": sse_ratio, "loglik": ll_ours, "loglik_em": ll_ref, "figure": figure, "frames": report.frames,
            "fig": fig, "comparison": comparison, "km": km, "mean": mean, "std": std, "cfg": cfg, "paths": paths}


def _command(out: Any, quick: bool, k: int, seed: int) -> str:
    return f"sketchcore demo --out {out} -k {k} --seed {seed}" + (" --quick" if quick else "")


def _machine() -> str:
    """One line naming the machine: CPU model, cores, SIMD level, sketchcore version."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, SIMD {_core.simd_level()}, {platform.system()}, "
            f"sketchcore {_core.__version__}")


def cluster_colors(k: int) -> np.ndarray:
    """RGB colour of each cluster index (one palette for every panel of the demo figure)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return np.asarray([cmap(i % cmap.N)[:3] for i in range(k)])


def truth_colors() -> np.ndarray:
    """RGB colour of each class of :data:`TRUTH_CLASSES`."""
    import matplotlib

    cmap = matplotlib.colormaps["Dark2"]
    return np.asarray([cmap(i)[:3] for i in range(len(TRUTH_CLASSES))])


def demo_figure(km, mean, std, paths, cfg, truth: dict, comparison: list, footer: str = ""):
    """The demo's figure (a matplotlib Figure, Agg backend).

    Top left: the k-means centroids as spectral shapes; top right: for each
    recording, its true segments above the clusters found, frame by frame
    (a cluster has the same colour in both panels, and both have a legend);
    bottom: the comparison with scikit-learn as printed (time and peak memory
    of each step, each annotated with its result); footer: the command and
    the machine.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from sketchcore.audio.features import extract_features, load_audio

    k = len(km.weights_)
    colors = cluster_colors(k)
    tcolors = truth_colors()
    centers = km.cluster_centers_ * std + mean  # back to log-mel dB
    fig = plt.figure(figsize=(14, 9.5))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 1.5], height_ratios=[1.15, 1], hspace=0.5, wspace=0.42,
                            left=0.14, right=0.98, top=0.95, bottom=0.08)
    ax1, ax2 = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax3, ax4 = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    for c in np.argsort(-km.weights_):
        ax1.plot(centers[c], color=colors[c], label=f"cluster {c} ({100 * km.weights_[c]:.0f}%)", lw=1.5)
    ax1.set(xlabel="mel band", ylabel="log power (dB)", title="Cluster centroids as spectral shapes")
    ax1.legend(fontsize=7, ncol=2, title="clusters", title_fontsize=7)

    hop = cfg.hop_length / cfg.sample_rate
    labels, names = [], []
    for p in paths:
        f = extract_features(load_audio(p, cfg.sample_rate), cfg)
        labels.append(km.predict((f - mean) / std))
        names.append(Path(p).name)
    width = min(len(r) for r in labels)
    times = np.arange(width) * hop
    img = np.ones((3 * len(paths), width, 3))  # a white spacer row between recordings
    ticks, ticklabels = [], []
    for i, (lab, name) in enumerate(zip(labels, names, strict=True)):
        classes = np.zeros(width, dtype=int)
        for start, end, what in truth.get(name, []):
            classes[(times >= start) & (times < end)] = TRUTH_CLASSES.index(what)
        img[3 * i] = tcolors[classes]
        img[3 * i + 1] = colors[lab[:width]]
        ticks += [3 * i, 3 * i + 1]
        ticklabels += [f"{name}: true", "clusters found"]
    ax2.imshow(img, aspect="auto", interpolation="nearest", extent=(0.0, width * hop, len(img) - 0.5, -0.5))
    ax2.set_yticks(ticks, ticklabels, fontsize=7)
    ax2.set(xlabel="time (s)", title="True segments and the clusters found, frame by frame")
    handles = [Patch(color=colors[c], label=f"cluster {c}") for c in range(k)]
    handles += [Patch(color=tcolors[j], label=f"true: {name}") for j, name in enumerate(TRUTH_CLASSES)]
    ax2.legend(handles=handles, fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.13))

    steps = [row[0] for row in comparison]
    ours = ["sklearn" not in step for step in steps]
    bar_colors = ["tab:blue" if o else "tab:gray" for o in ours]
    y = np.arange(len(steps))
    ax3.barh(y, [row[1] for row in comparison], color=bar_colors)
    ax3.set_yticks(y, steps, fontsize=8)
    ax3.invert_yaxis()
    ax3.set(xlabel="time (s)", title="sketchcore (blue) and scikit-learn (grey) on the same frames")
    ax4.barh(y, [row[2] for row in comparison], color=bar_colors)
    ax4.set_yticks(y, [row[3] for row in comparison], fontsize=8)
    ax4.invert_yaxis()
    ax4.set(xlabel="peak resident-memory growth (MiB)", title="memory of each step, and its result")
    ax4.legend(handles=[Patch(color="tab:blue", label="sketchcore"), Patch(color="tab:gray", label="scikit-learn")],
               fontsize=7, loc="lower right")
    if footer:
        fig.text(0.01, 0.005, footer, fontsize=7, family="monospace", va="bottom")
    return fig
