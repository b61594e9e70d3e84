"""What training prints: a bar, a line per epoch, or nothing (``verbose`` 1, 2, 0).

The bar (tqdm on stderr, one tick per epoch) shows only when asked
(``verbose=1`` / ``progress=True``) *and* stderr is a terminal, so logs, CI
runs and doctests stay clean; the epoch's numbers go on the line(s) under it
(``fit`` orders them: loss, metrics, validation values, learning rate), and
the first epoch, which compiles, shows as its own phase. ``verbose=2`` prints
one line per epoch on stdout (`EpochBar`).
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from typing import Any, Mapping

from tqdm import tqdm


def wants_bar(progress: bool, stream=None) -> bool:
    """True if a bar should be drawn: ``progress`` and ``stream`` (stderr) is a terminal.

    Args:
      progress: the user's ``progress=`` argument.
      stream: the output stream; default ``sys.stderr``.

    Returns:
      ``bool``.

    Examples:
      >>> fnn.train.loop.progress.wants_bar(False)
      False
    """
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(progress) and callable(isatty) and bool(isatty())


_SHORT = {"learning_rate": "lr", "accuracy": "acc", "precision": "prec", "recall": "rec"}
BAR_FORMAT = "{l_bar}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
"""The bar line: the numbers go on the line(s) under it, so every one stays visible."""


def short_name(name: str) -> str:
    """The label of a history entry in progress output: ``val_accuracy`` -> ``val_acc``,
    ``learning_rate`` -> ``lr`` (the history itself keeps the full names)."""
    prefix = "val_" if name.startswith("val_") else ""
    rest = name[len(prefix):]
    for long, short in _SHORT.items():
        rest = rest.replace(long, short)
    return prefix + rest


def format_logs(logs: Mapping[str, float]) -> dict[str, str]:
    """Short labels and strings for progress output: 4 significant digits, in the order given.

    Args:
      logs: the epoch's values (Python floats).

    Returns:
      ``{label: text}`` (`short_name` labels).

    Examples:
      >>> fnn.train.loop.progress.format_logs({"loss": 0.123456, "val_accuracy": 0.9,
      ...                                 "learning_rate": 1e-3})
      {'loss': '0.1235', 'val_acc': '0.9', 'lr': '0.001'}
    """
    return {short_name(name): f"{value:.4g}" for name, value in logs.items()
            if name != "skipped" or value}


def wrap_numbers(logs: Mapping[str, float], width: int) -> list[str]:
    """``label value`` pairs joined by two spaces, wrapped into lines of at most ``width``.

    Examples:
      >>> fnn.train.loop.progress.wrap_numbers({"loss": 0.5, "val_loss": 0.25, "lr": 0.1}, 24)
      ['loss 0.5  val_loss 0.25', 'lr 0.1']
    """
    lines, current = [], ""
    for label, text in format_logs(logs).items():
        item = f"{label} {text}"
        if current and len(current) + 2 + len(item) > width:
            lines.append(current)
            current = item
        else:
            current = f"{current}  {item}" if current else item
    return lines + ([current] if current else [])


def _columns(stream) -> int:
    """The terminal's width, or 0 when unknown (a pseudo-terminal without a size)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def resolve_verbose(where: str, verbose: Any, progress: bool) -> int:
    """``verbose`` (0 silent, 1 a bar, 2 a line per epoch), or from ``progress``."""
    if verbose is None:
        return 1 if progress else 0
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"{where}: verbose must be 0 (silent), 1 (a progress bar) or 2 "
                         f"(one line per epoch), got {verbose!r}")
    return int(verbose)


class EpochBar:
    """Progress of a training run: a bar, a line per epoch, or nothing.

    With ``verbose=1`` (and stderr a terminal) a tqdm bar on stderr, with the
    epoch's numbers on the line(s) under it (short labels, 4 significant digits,
    wrapped to the terminal's width, so each one stays visible at 80 columns).
    The first epoch, which includes compiling the epoch's program, shows as
    ``compiling``; the bar and its estimate of the time left start from the
    compiled epochs only. With ``verbose=2`` one line per epoch on stdout
    (``epoch 3/30  0.41s  loss 0.1235  acc 0.95 ...``), terminal or not.

    Args:
      epochs: the number of epochs (the bar's total).
      enabled: draw the bar (see `wants_bar`); ignored when ``verbose`` is given.
      done: epochs already done (a resumed run starts its bar there).
      verbose: ``0``, ``1`` or ``2`` (default: 1 when ``enabled``, else 0).

    Examples:
      >>> bar = fnn.train.loop.progress.EpochBar(3, enabled=False, verbose=2)
      >>> bar.update({"loss": 0.5, "learning_rate": 0.01})     # doctest: +ELLIPSIS
      epoch 1/3  ...s  loss 0.5  lr 0.01
      >>> bar.message("done"); bar.close()
      done
    """

    def __init__(self, epochs: int, enabled: bool, done: int = 0, verbose: int | None = None):
        self.epochs, self.done = epochs, done
        self.mode = {0: "off", 1: "bar", 2: "lines"}[
            (1 if enabled else 0) if verbose is None else verbose]
        if self.mode == "bar" and verbose is not None and not enabled:
            self.mode = "off"                  # verbose=1, but stderr is not a terminal
        self.bar, self.status = None, None
        self.lines: list = []
        self._steps_shown = 0.0
        self.started = time.perf_counter()
        if self.mode == "bar":
            self.width = _columns(sys.stderr) or 120
            self.status = self._line(0, f"epoch {done + 1}/{epochs}: compiling and running "
                                        f"the first epoch...", leave=False)

    def _line(self, position: int, text: str, leave: bool = True) -> Any:
        line = tqdm(total=0, bar_format="{desc}", position=position, file=sys.stderr,
                    leave=leave, ncols=self.width)
        line.set_description_str(text[:self.width - 1])
        return line

    def update(self, logs: Mapping[str, float]) -> None:
        """Advance one epoch and show ``logs``."""
        self.done += 1
        now = time.perf_counter()
        seconds, self.started = now - self.started, now
        if self.mode == "lines":
            numbers = "  ".join(f"{k} {v}" for k, v in format_logs(logs).items())
            print(f"epoch {self.done}/{self.epochs}  {seconds:.2f}s  {numbers}", flush=True)
        elif self.mode == "bar":
            if self.bar is None:
                # The first epoch compiled the program: the estimate starts after it.
                self.status.close()
                self.status = None
                self.bar = tqdm(total=self.epochs, initial=self.done, unit="epoch",
                                file=sys.stderr, bar_format=BAR_FORMAT, position=0,
                                ncols=min(self.width, 80))
            else:
                self.bar.update(1)
            rows = wrap_numbers(logs, min(self.width, 80) - 1)
            while len(self.lines) < len(rows):
                self.lines.append(self._line(len(self.lines) + 1, ""))
            for line, row in zip(self.lines, rows + [""] * len(self.lines)):
                line.set_description_str(row)

    def steps(self, done: int, total: int | None = None) -> None:
        """Show the current epoch's steps (a streamed epoch, whose length may be unknown),
        at most five times a second."""
        now = time.perf_counter()
        if self.mode != "bar" or now - self._steps_shown < 0.2:
            return
        self._steps_shown = now
        text = f"step {done}" + (f"/{total}" if total else "")
        if self.bar is None and self.status is not None:      # the first epoch
            self.status.set_description_str(
                f"epoch {self.done + 1}/{self.epochs}: compiling and running the first "
                f"epoch... {text}"[:self.width - 1])
        elif self.bar is not None:
            self.bar.set_description_str(text)

    def message(self, text: str) -> None:
        """A line under the progress output (e.g. why training stopped)."""
        if self.mode == "lines":
            print(text, flush=True)
        elif self.mode == "bar":
            tqdm.write(textwrap.fill(text, min(self.width, 80) - 1, subsequent_indent="  "),
                       file=sys.stderr)

    def close(self) -> None:
        """Finish the bar (safe to call twice)."""
        for line in ([self.bar] if self.bar is not None else []) + self.lines:
            line.close()
        self.bar, self.lines = None, []
        if self.mode == "bar" and self.status is not None:
            self.status.close()
            self.status = None
