"""What a run directory records: the environment of the run, and one JSON line per epoch.

``record.json`` holds the config, the seed, the fnn/jax/jaxlib/numpy/Python
versions, the backend and device kind, ``XLA_FLAGS``, the git commit of the
working directory (and whether it had uncommitted changes), and wall times.
``metrics.jsonl`` holds the numbers only, ``{"epoch": 0, "loss": ...}`` per
line, with no times, so two runs of one config and seed write byte-identical
files (on CPU).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from typing import Any

from fnn.checkpoint.atomic import atomic_file


def git_commit(directory: str = ".") -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the git work tree holding ``directory``
    (``None`` outside one, or without git)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=directory, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def environment() -> dict:
    """Versions, backend, device kind and count, ``XLA_FLAGS`` and the git commit."""
    import jax
    import jaxlib
    import numpy as np

    import fnn
    device = jax.devices()[0]
    return {"fnn": fnn.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "backend": jax.default_backend(),
            "device_kind": device.device_kind, "device_count": jax.device_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "git": git_commit()}


def write_json(path: str, value: Any) -> None:
    """``value`` as indented JSON at ``path``, written atomically."""
    with atomic_file(path) as f:
        f.write((json.dumps(value, indent=2) + "\n").encode())


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


class MetricsLog:
    """A ``fit`` callback appending ``{"epoch": e, **logs}`` to a JSON-lines file.

    Args:
      path: the ``metrics.jsonl`` file.
      history: epochs already done (a resumed run): the file is rewritten with exactly
        these first, so it never holds epochs that the checkpoint does not.
    """

    def __init__(self, path: str, history: dict | None = None):
        self.path = path
        lines = []
        if history:
            epochs = len(next(iter(history.values())))
            lines = [self._line(e, {k: v[e] for k, v in history.items()})
                     for e in range(epochs)]
        with atomic_file(path) as f:
            f.write("".join(lines).encode())

    @staticmethod
    def _line(epoch: int, logs: dict) -> str:
        return json.dumps({"epoch": epoch, **logs}) + "\n"

    def __call__(self, epoch: int, logs: dict) -> bool:
        with open(self.path, "a") as f:
            f.write(self._line(epoch, logs))
            f.flush()
        return False


def read_metrics(path: str) -> list[dict]:
    """The epochs of a ``metrics.jsonl`` file."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
