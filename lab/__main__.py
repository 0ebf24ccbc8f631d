"""Let `python -m lab ...` run the command line."""

import sys

from lab.cli.main import main

sys.exit(main())
