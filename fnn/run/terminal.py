"""What the ``fnn`` commands share: the error line they print, and the time they stamp."""

from __future__ import annotations

import datetime
import sys


def fail(message: str) -> int:
    """Print ``fnn: error: message`` to stderr; the exit status 2."""
    print(f"fnn: error: {message}", file=sys.stderr)
    return 2


def now() -> str:
    """The current UTC time, ISO 8601 to the second (the run record's session times)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
