"""The core layer: frequency operators, sketches, streamed moments, the
reproducible generator, input validation, and the registry the core
dispatches through (it imports no backend)."""
