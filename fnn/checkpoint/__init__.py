"""Checkpoints: pytrees in safetensors files, written atomically; see ``docs/checkpoints.md``.

``save(path, tree, config=...)`` and ``load(path, like=...)`` read and write one
file; `Manager` keeps a directory of them (the last ``keep``, and the best
by a metric), which ``fnn.fit(..., checkpoint_dir=...)`` uses to resume a run.
"""

from fnn.checkpoint.files import (CheckpointInfo, CheckpointMismatchError, conform, info, load,
                                  mismatch_report, save)
from fnn.checkpoint.manager import Manager
from fnn.checkpoint.safetensors_format import CorruptCheckpointError

__all__ = ["CheckpointInfo", "CheckpointMismatchError", "CorruptCheckpointError", "Manager",
           "conform", "info", "load", "mismatch_report", "save"]
