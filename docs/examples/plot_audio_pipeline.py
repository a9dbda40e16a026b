"""
The audio pipeline on a few synthetic recordings
================================================

:func:`sketchcore.audio.sketch_corpus` walks folders of recordings, turns
each file into frame features (here log-mel spectra) and streams them into
one sketch file, file by file; the per-feature mean and variance are
streamed in the same pass. :meth:`Sketch.standardized` then gives the
sketch of the standardised features exactly, and
:class:`~sketchcore.CompressiveKMeans` decodes a codebook from it. The
command line does the same with ``sketchcore sketch`` and
``sketchcore fit``.

Needs the ``audio`` extra (librosa and soundfile).
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf

from sketchcore import CompressiveKMeans
from sketchcore.audio import FeatureConfig, extract_features, sketch_corpus

rate = 16_000
rng = np.random.default_rng(0)
folder = Path(tempfile.mkdtemp())


def tone(f0, seconds=2.0):
    t = np.arange(int(seconds * rate)) / rate
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    return 0.3 * y * np.minimum(1, 20 * t) * np.minimum(1, 20 * (seconds - t))


# Three "recordings": a low tone, a high tone, and both separated by noise.
sf.write(folder / "low.wav", tone(220), rate)
sf.write(folder / "high.wav", tone(880), rate)
sf.write(folder / "mixed.wav", np.concatenate([tone(220, 1), 0.05 * rng.normal(size=rate), tone(880, 1)]), rate)
(folder / "notes.txt").write_text("not audio: ignored (wrong extension)")
(folder / "broken.wav").write_bytes(b"RIFF but not really a wav file")

features = FeatureConfig(kind="logmel", sample_rate=rate, n_fft=1024, hop_length=256, n_mels=32)
sketch, report = sketch_corpus([folder], folder / "corpus.sketch", features=features, sketch_size=1000,
                               progress=False, warn=print)
print(report.summary())
print(sketch)

# %%
# Decode three clusters of frames in standardised coordinates, then map the
# centroids back to decibels.

std_sketch = sketch.standardized()
km = CompressiveKMeans(3, random_state=0).fit_sketch(std_sketch)
mean, std = std_sketch.operator.mean, std_sketch.operator.std
centroids_db = km.cluster_centers_ * std + mean
print("cluster weights:", np.round(km.weights_, 3))

# %%
# Each frame of the mixed recording, coloured by its closest centroid.

frames = extract_features(sf.read(folder / "mixed.wav", dtype="float32")[0], features)
labels = km.predict((frames - mean) / std)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
ax0.imshow(frames.T, origin="lower", aspect="auto", cmap="magma")
ax0.scatter(np.arange(len(labels)), np.full(len(labels), -1.5), c=labels, cmap="tab10", vmin=0, vmax=9,
            marker="s", s=12, clip_on=False)
ax0.set_xlabel("frame")
ax0.set_ylabel("mel band")
ax0.set_title("mixed.wav: log-mel frames and their cluster")
for k, c in enumerate(centroids_db):
    ax1.plot(c, np.arange(len(c)), color=plt.get_cmap("tab10")(k), label=f"centroid {k}")
ax1.set_xlabel("dB")
ax1.set_title("centroids (decoded from the sketch)")
ax1.legend(fontsize=8)
fig.tight_layout()
