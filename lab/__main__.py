"""Let `python -m lab ...` run the command line."""

import sys

from lab.cli.parser import main

sys.exit(main())
