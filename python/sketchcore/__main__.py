"""``python -m sketchcore``: the command line."""

import sys

from sketchcore.cli.main import main

sys.exit(main())
