"""Sketch every recording under a folder, then fit k-means from the sketch.

    python examples/sketch_folder.py FOLDER [-k 16]
"""

import argparse

import sketchcore
from sketchcore.audio import FeatureConfig, sketch_corpus

ap = argparse.ArgumentParser()
ap.add_argument("folder")
ap.add_argument("-k", type=int, default=16)
args = ap.parse_args()

sketch, report = sketch_corpus([args.folder], "folder.sketch", features=FeatureConfig(kind="mfcc", deltas=True))
print(report.summary())
km = sketchcore.CompressiveKMeans(args.k, random_state=0).fit_sketch(sketch.standardized())
print("cluster weights:", km.weights_.round(3))
