"""The per-epoch progress bar of ``fnn.fit`` (tqdm on stderr).

One bar for the whole fit, advanced once per epoch, with the epoch's loss and
metrics in its postfix. It shows only when asked (``progress=True``) *and*
stderr is a terminal, so logs, CI runs and doctests stay clean.
"""

from __future__ import annotations

import sys
from typing import Mapping

from tqdm import tqdm


def wants_bar(progress: bool, stream=None) -> bool:
    """True if a bar should be drawn: ``progress`` and ``stream`` (stderr) is a terminal.

    Args:
      progress: the user's ``progress=`` argument.
      stream: the output stream; default ``sys.stderr``.

    Returns:
      ``bool``.

    Example:
      >>> fnn.train.progress.wants_bar(False)
      False
    """
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(progress) and callable(isatty) and bool(isatty())


def format_logs(logs: Mapping[str, float]) -> dict[str, str]:
    """Short strings for the postfix: 4 significant digits per value.

    Args:
      logs: the epoch's values (Python floats).

    Returns:
      ``{name: text}``.

    Example:
      >>> fnn.train.progress.format_logs({"loss": 0.123456, "learning_rate": 1e-3})
      {'loss': '0.1235', 'learning_rate': '0.001'}
    """
    return {name: f"{value:.4g}" for name, value in logs.items()}


class EpochBar:
    """A tqdm bar over ``epochs`` (a no-op when disabled).

    Args:
      epochs: the number of epochs (the bar's total).
      enabled: draw the bar (see :func:`wants_bar`).

    Example:
      >>> bar = fnn.train.progress.EpochBar(3, enabled=False)
      >>> bar.update({"loss": 0.5}); bar.close()
    """

    def __init__(self, epochs: int, enabled: bool):
        self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True,
                        disable=not enabled) if enabled else None

    def update(self, logs: Mapping[str, float]) -> None:
        """Advance one epoch and show ``logs`` in the postfix."""
        if self.bar is not None:
            self.bar.set_postfix(format_logs(logs), refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        """Finish the bar (safe to call twice)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
