"""The command line (:mod:`sketchcore.cli.main`) and the built-in demo
(:mod:`sketchcore.cli.demo`)."""
