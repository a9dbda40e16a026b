"""Score new recordings under a GMM written by `sketchcore fit gmm`.

    sketchcore sketch corpus/ -o corpus.sketch
    sketchcore fit gmm corpus.sketch -k 16 -o model.json
    python examples/score_recordings.py model.json new1.wav new2.flac
"""

import json
import sys

import numpy as np
from sklearn.mixture import GaussianMixture

from sketchcore.audio import FeatureConfig, extract_features, load_audio

model = json.load(open(sys.argv[1]))
cfg = FeatureConfig.from_dict(model["features"])
gmm = GaussianMixture(model["n_components"], covariance_type="diag")
gmm.weights_ = np.asarray(model["weights"])
gmm.means_ = np.asarray(model["means"])
gmm.covariances_ = np.asarray(model["covariances"])
gmm.precisions_cholesky_ = 1.0 / np.sqrt(gmm.covariances_)
for path in sys.argv[2:]:
    frames = extract_features(load_audio(path, cfg.sample_rate), cfg)
    print(f"{path}: mean log-likelihood {gmm.score(frames):.3f} per frame over {len(frames)} frames")
