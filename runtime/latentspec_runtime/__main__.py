"""``python -m latentspec_runtime``: the ``latentspec-runtime`` command line."""

import sys

from .cli import main

sys.exit(main())
