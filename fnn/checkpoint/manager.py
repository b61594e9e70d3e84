"""A directory of checkpoints, one per saved epoch: the last ``keep`` kept, and the best.

Files are ``epoch-000004.safetensors`` (the epoch index, zero-padded, so names
sort by epoch); each is written atomically (`fnn.checkpoint.save`), so the
newest file is always whole. After each save, older files beyond the last
``keep`` are deleted, except the best one by ``best`` (a metric saved with each
checkpoint) when given. ``fnn.fit(..., checkpoint_dir=...)`` writes through a
Manager and resumes from `Manager.latest`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from typing import Any

from fnn.checkpoint.atomic import remove_stale
from fnn.checkpoint.files import info, save
from fnn.checkpoint.safetensors_format import CorruptCheckpointError
from fnn.validation import check_int

_NAME = re.compile(r"^epoch-(\d+)\.safetensors$")


class Manager:
    """Saves and finds the checkpoints of one run in ``directory``.

    Args:
      directory: created if missing.
      keep: how many of the newest checkpoints to keep (``>= 1``).
      best: a metric name (``"val_loss"``): also keep the checkpoint whose saved
        metrics are best by it (``None``: keep only the newest).
      mode: ``"min"``, ``"max"`` or ``"auto"`` (from the name, as
        `fnn.EarlyStopping` does).

    Examples:
      >>> import tempfile
      >>> manager = fnn.checkpoint.Manager(tempfile.mkdtemp(), keep=2, best="val_loss")
      >>> for epoch, val_loss in enumerate([0.5, 0.3, 0.4, 0.6]):
      ...     _ = manager.save(epoch, {"w": jnp.full(2, epoch)}, metrics={"val_loss": val_loss})
      >>> manager.epochs(), manager.best_epoch()
      ([1, 2, 3], 1)
      >>> fnn.checkpoint.load(manager.latest())["w"].tolist()
      [3, 3]
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, best: str | None = None,
                 mode: str = "auto"):
        from fnn.train.loop.early_stopping import monitor_mode
        check_int("checkpoint.Manager", "keep", keep)
        self.directory = os.fspath(directory)
        self.keep = keep
        self.best = best
        self.mode = None if best is None else monitor_mode("checkpoint.Manager", best, mode)
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise ValueError(f"checkpoint.Manager: the directory {self.directory!r} is a file; "
                             f"checkpoints go in a folder (created when missing)")
        os.makedirs(self.directory, exist_ok=True)
        remove_stale(self.directory)

    def path(self, epoch: int) -> str:
        """The file of epoch ``epoch``."""
        return os.path.join(self.directory, f"epoch-{epoch:06d}.safetensors")

    def epochs(self) -> list[int]:
        """The epochs that have a checkpoint file, in order."""
        found = (_NAME.match(name) for name in os.listdir(self.directory))
        return sorted(int(m.group(1)) for m in found if m)

    def save(self, epoch: int, tree: Any, *, config: Any = None, step: int | None = None,
             metrics: dict | None = None) -> str:
        """Write epoch ``epoch``'s checkpoint (`fnn.checkpoint.save`), then delete the
        files that are neither among the newest ``keep`` nor the best; its path."""
        path = save(self.path(epoch), tree, config=config, step=step, epoch=epoch,
                    metrics=metrics)
        self._prune()
        return path

    def best_epoch(self) -> int | None:
        """The epoch whose checkpoint has the best ``best`` metric (``None`` without one)."""
        if self.best is None:
            return None
        chosen, value = None, None
        for epoch in self.epochs():
            try:
                number = info(self.path(epoch)).metrics.get(self.best)
            except (CorruptCheckpointError, OSError):
                continue
            if number is None or math.isnan(number):
                continue
            better = value is None or (number < value if self.mode == "min" else number > value)
            if better:
                chosen, value = epoch, number
        return chosen

    def latest(self) -> str | None:
        """The newest whole checkpoint's path (``None`` if there is none). A file that is
        corrupt (written by something else than `fnn.checkpoint.save`) is skipped
        with a warning naming it."""
        for epoch in reversed(self.epochs()):
            path = self.path(epoch)
            try:
                info(path)
            except CorruptCheckpointError as error:
                warnings.warn(f"checkpoint.Manager: skipping {error}", RuntimeWarning,
                              stacklevel=2)
                continue
            return path
        return None

    def _prune(self) -> None:
        epochs = self.epochs()
        keep = set(epochs[-self.keep:])
        best = self.best_epoch()
        if best is not None:
            keep.add(best)
        for epoch in epochs:
            if epoch not in keep:
                try:
                    os.unlink(self.path(epoch))
                except FileNotFoundError:
                    pass
