"""Module paths that moved, kept working: ``import fnn.metric_names`` (and every
``from fnn.metric_names import ...``) gives the module now at ``fnn.metrics.names``.

Users' code, saved checkpoints (which name the module of each NamedTuple they hold, e.g.
``fnn.train.loss_scaling:LossScaledState``) and the documentation refer to modules by
path, so a module that moves keeps its old path here, as an alias of the same module
object: a patch or a read through either path sees the same names.
"""

from __future__ import annotations

import importlib
import sys

MOVED: dict[str, str] = {
    "fnn.metric_names": "fnn.metrics.names",
}


def install(prefix: str = "fnn") -> None:
    """Make every old path under ``prefix`` that :data:`MOVED` lists an alias of its new
    module (in ``sys.modules`` and as an attribute of the old parent package).

    Called at the end of a package's ``__init__``, once its modules are imported.
    """
    for old, new in MOVED.items():
        if not old.startswith(prefix + ".") or old.count(".") != prefix.count(".") + 1:
            continue
        module = importlib.import_module(new)
        sys.modules[old] = module
        setattr(sys.modules[prefix], old.rsplit(".", 1)[1], module)
