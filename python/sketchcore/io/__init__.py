"""The files-and-privacy layer: the ``.sketch`` file format
(:mod:`sketchcore.io.sketch_file`) and differentially private release of
sketches (:mod:`sketchcore.io.privacy`)."""
