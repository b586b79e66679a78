import sys

from latentspec.cli import main

sys.exit(main())
