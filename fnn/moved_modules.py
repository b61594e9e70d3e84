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
    # fnn/train laid out by concern (issue 25); fnn.train.data, .epoch and .step are
    # packages now, which re-export the names of the modules they replace
    "fnn.train.allocator": "fnn.train.system.allocator",
    "fnn.train.compile_cache": "fnn.train.system.compile_cache",
    "fnn.train.determinism": "fnn.train.system.determinism",
    "fnn.train.batch_sources": "fnn.train.data.batch_sources",
    "fnn.train.streaming": "fnn.train.data.streaming",
    "fnn.train.shuffle": "fnn.train.data.shuffle",
    "fnn.train.prefetch": "fnn.train.data.prefetch",
    "fnn.train.augment": "fnn.train.data.augment",
    "fnn.train.sample_weights": "fnn.train.data.sample_weights",
    "fnn.train.config": "fnn.train.step.train_config",
    "fnn.train.outputs": "fnn.train.step.outputs",
    "fnn.train.precision": "fnn.train.step.precision",
    "fnn.train.loss_scaling": "fnn.train.step.loss_scaling",
    "fnn.train.gradients": "fnn.train.step.gradients",
    "fnn.train.checks": "fnn.train.step.checks",
    "fnn.train.streamed_epoch": "fnn.train.epoch.streamed",
    "fnn.train.data_parallel": "fnn.train.epoch.data_parallel",
    "fnn.train.dispatch": "fnn.train.epoch.dispatch",
    "fnn.train.strategy": "fnn.train.epoch.strategy",
    "fnn.train.streamed_evaluation": "fnn.train.epoch.streamed_evaluation",
    "fnn.train.callbacks": "fnn.train.loop.callbacks",
    "fnn.train.early_stopping": "fnn.train.loop.early_stopping",
    "fnn.train.progress": "fnn.train.loop.progress",
    "fnn.train.resume": "fnn.train.loop.resume",
    "fnn.train.initial_values": "fnn.train.loop.initial_values",
    "fnn.train.ensemble": "fnn.train.many.ensemble",
    "fnn.train.sweep": "fnn.train.many.sweep",
    "fnn.train.cross_validation": "fnn.train.many.cross_validation",
    "fnn.train.table": "fnn.train.many.table",
}


def install(prefix: str = "fnn") -> None:
    """Make every old path under ``prefix`` that `MOVED` lists an alias of its new
    module (in ``sys.modules`` and as an attribute of the old parent package).

    Called at the end of a package's ``__init__``, once its modules are imported.
    """
    for old, new in MOVED.items():
        if not old.startswith(prefix + ".") or old.count(".") != prefix.count(".") + 1:
            continue
        module = importlib.import_module(new)
        sys.modules[old] = module
        package, name = sys.modules[prefix], old.rsplit(".", 1)[1]
        if not hasattr(package, name):    # fnn.train.sweep stays the function
            setattr(package, name, module)
