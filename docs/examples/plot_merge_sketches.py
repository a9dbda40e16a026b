"""
Sketches of parts add up to the sketch of the whole
====================================================

A sketch is a sum over samples, so the sketches of disjoint parts of a data
set, made with the same operator, add up to the sketch of the whole data:
parts can be sketched on different threads, machines, sites or days and
merged. The operator is defined by a few parameters and a seed, so every
party regenerates the same frequencies; its fingerprint guards the merge.
"""

import matplotlib.pyplot as plt
import numpy as np

import sketchcore
from sketchcore.datasets import make_mixture
from sketchcore.exceptions import OperatorMismatchError

X, _ = make_mixture(200_000, 8, 5, random_state=0)
op = sketchcore.SketchOperator(dim=8, sketch_size=400, sigma=1.0, seed=2024)

whole = op.sketch(X)
parts = [op.sketch(part) for part in np.array_split(X, 7)]
merged = sketchcore.Sketch.merge(parts)          # or parts[0] + parts[1] + ...

gap = np.max(np.abs(merged.z - whole.z))
print(whole)
print(merged)
print(f"largest difference between the normalised sketches: {gap:.2e}")

# %%
# Only the summation order differs, so the two agree to rounding. A sketch
# made with another operator (here another seed) is refused:

other = sketchcore.SketchOperator(dim=8, sketch_size=400, sigma=1.0, seed=7).sketch(X[:1000])
try:
    whole + other
except OperatorMismatchError as exc:
    print("refused:", exc)

# %%
# The modulus of the sketch as a function of the frequency's norm: the
# merged sketch lies on the whole one. For a mixture of unit Gaussians the
# envelope decays like exp(-||omega||^2 / 2), the curve
# :func:`sketchcore.estimate_sigma` fits.

radius = np.linalg.norm(op.frequencies, axis=0)
r = np.linspace(0, radius.max(), 200)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(radius, np.abs(whole.z), "o", ms=6, mfc="none", label="sketch of the whole")
ax.plot(radius, np.abs(merged.z), ".", ms=4, label="merge of 7 parts")
ax.plot(r, np.exp(-r**2 / 2), "k--", lw=1, label=r"$\exp(-\|\omega\|^2/2)$")
ax.set_xlabel(r"$\|\omega_j\|$")
ax.set_ylabel(r"$|z_j|$")
ax.legend()
fig.tight_layout()
