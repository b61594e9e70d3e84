"""``python -m fnn``: the command line (:mod:`fnn.run.cli`)."""

import sys

from fnn.run.cli import main

if __name__ == "__main__":
    sys.exit(main())
