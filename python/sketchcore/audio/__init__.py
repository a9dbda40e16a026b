"""The audio layer: audio files to frame features to sketches, streaming file
by file (:mod:`sketchcore.audio.features`, :mod:`sketchcore.audio.pipeline`).

Needs the ``audio`` extra (``pip install 'sketchcore[audio]'``).
"""

from sketchcore.audio.features import (
    AUDIO_EXTENSIONS,
    AudioDecodeError,
    FeatureConfig,
    extract_features,
    find_audio_files,
    iter_features,
    load_audio,
)
from sketchcore.audio.pipeline import CorpusReport, sketch_corpus
from sketchcore.core.moments import RunningMoments

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodeError",
    "FeatureConfig",
    "RunningMoments",
    "CorpusReport",
    "find_audio_files",
    "load_audio",
    "extract_features",
    "iter_features",
    "sketch_corpus",
]
