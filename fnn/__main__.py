"""``python -m fnn``: the command line (`fnn.run.cli`)."""

import sys

from fnn.run.cli import main

if __name__ == "__main__":
    sys.exit(main())
