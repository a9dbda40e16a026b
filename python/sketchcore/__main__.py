"""``python -m sketchcore``: the command line."""

import sys

from sketchcore.cli import main

sys.exit(main())
