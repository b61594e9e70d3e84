"""The per-epoch progress bar of ``fnn.fit`` (tqdm on stderr).

One bar for the whole fit, advanced once per epoch, with the epoch's loss and
metrics in its postfix (``fit`` orders them: loss, metrics, validation
values, learning rate). It shows only when asked (``progress=True``) *and*
stderr is a terminal, so logs, CI runs and doctests stay clean.
"""

from __future__ import annotations

import os
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


_SHORT = {"learning_rate": "lr"}
BAR_FORMAT = "{l_bar}{bar:16}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
"""A bar of fixed width, without the rate: the postfix with the numbers gets the room."""


def format_logs(logs: Mapping[str, float]) -> dict[str, str]:
    """Short strings for the postfix: 4 significant digits per value, in the order given.

    Args:
      logs: the epoch's values (Python floats).

    Returns:
      ``{name: text}`` (``learning_rate`` is shown as ``lr``).

    Example:
      >>> fnn.train.progress.format_logs({"loss": 0.123456, "learning_rate": 1e-3})
      {'loss': '0.1235', 'lr': '0.001'}
    """
    return {_SHORT.get(name, name): f"{value:.4g}" for name, value in logs.items()}


def _columns(stream) -> int:
    """The terminal's width, or 0 when unknown (a pseudo-terminal without a size)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class EpochBar:
    """A tqdm bar over ``epochs`` (a no-op when disabled).

    Args:
      epochs: the number of epochs (the bar's total).
      enabled: draw the bar (see :func:`wants_bar`).
      done: epochs already done (a resumed run starts its bar there).

    Example:
      >>> bar = fnn.train.progress.EpochBar(3, enabled=False)
      >>> bar.update({"loss": 0.5}); bar.close()
    """

    def __init__(self, epochs: int, enabled: bool, done: int = 0):
        self.bar = None
        if enabled:
            # tqdm draws nothing on a terminal reporting 0 columns (e.g. under `script`).
            width = ({"dynamic_ncols": True} if _columns(sys.stderr)
                     else {"ncols": 120, "nrows": 24})
            self.bar = tqdm(total=epochs, initial=done, unit="epoch", file=sys.stderr,
                            bar_format=BAR_FORMAT, **width)

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
