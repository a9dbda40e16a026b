"""Two sites sketch their own data with a shared operator; only sketches travel.

    python examples/merge_sites.py
"""

import numpy as np

import sketchcore

rng = np.random.default_rng(0)
means = rng.normal(scale=4, size=(5, 8))
site_a = means[rng.integers(5, size=100_000)] + rng.normal(size=(100_000, 8))
site_b = means[rng.integers(5, size=60_000)] + rng.normal(size=(60_000, 8))

# Agree on an operator (its parameters are a few bytes; both sides regenerate it).
op = sketchcore.SketchOperator(8, 400, sigma=1.5, seed=2024)
op.sketch(site_a).save("site_a.sketch")                       # at site A
op.sketch(site_b).save("site_b.sketch")                       # at site B
merged = sketchcore.Sketch.load("site_a.sketch") + sketchcore.Sketch.load("site_b.sketch")
# Or, on the command line: sketchcore merge site_a.sketch site_b.sketch -o both.sketch
km = sketchcore.CompressiveKMeans(5, random_state=0).fit_sketch(merged)
print(merged)
print(np.round(km.cluster_centers_[:, :3], 2))
