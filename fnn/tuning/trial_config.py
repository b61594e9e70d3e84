"""What a trial trains: ``build(trial)``'s dict, checked, and the structure that decides
which trials share one compiled program.

``build(trial)`` uses Optuna's define-by-run API (``trial.suggest_float``,
``suggest_int``, ``suggest_categorical``) and returns a dict with ``model``,
``loss`` and ``optimizer``, and optionally ``batch_size``, ``metrics``,
``penalty`` and ``augment`` (``fit``'s arguments of those names).

Trials *share a program* when everything static about their training step is
equal: the model (layers are values: ``Dense(64) == Dense(64)``), the loss,
the metrics, the batch size, the penalty, the augmentation, and what the
optimizer's ``update`` computes from its state (its code and closure, and the
state's structure). Optimizers that differ only
in the hyperparameters kept in their state (learning rate, betas, weight
decay) then train as members of one vmapped program, their hyperparameters
stacked as traced values; a different width, depth, activation or optimizer
makes another group. Both are compared without tracing anything
(`fnn.caching.function_key`), so grouping costs microseconds a trial.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

from fnn.caching import function_key, shape_key
from fnn.layers.function import as_layer
from fnn.optim.base import GradientTransformation
from fnn.train.loop.initial_values import jitted_init

KEYS = ("model", "loss", "optimizer", "batch_size", "metrics", "penalty", "augment")
REQUIRED = ("model", "loss", "optimizer")


class TrialConfig(NamedTuple):
    """One trial's training configuration (``build``'s dict with the defaults filled in)."""

    model: Any
    loss: Any
    optimizer: GradientTransformation
    batch_size: int | None
    metrics: tuple
    penalty: Any
    augment: Callable | None


def read_build(config: Any, batch_size: int | None, where: str) -> TrialConfig:
    """Check what ``build(trial)`` returned.

    Raises:
      TypeError: something else than a dict, or an optimizer that is not an
        ``fnn.optim`` one (a bad argument: the study stops).
      ValueError: a dict without ``model``, ``loss`` or ``optimizer``, or with other keys.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"{where}: build(trial) must return a dict with 'model', 'loss' and "
                        f"'optimizer' (and optionally {', '.join(repr(k) for k in KEYS[3:])}); "
                        f"it returned {type(config).__name__} {config!r:.80}")
    unknown = sorted(set(config) - set(KEYS))
    missing = [k for k in REQUIRED if k not in config]
    if unknown or missing:
        raise ValueError(f"{where}: build(trial) returned a dict with keys {sorted(config)}; "
                         f"it needs {list(REQUIRED)} and may have {list(KEYS[3:])}"
                         + (f" (unknown: {unknown})" if unknown else "")
                         + (f" (missing: {missing})" if missing else ""))
    optimizer = config["optimizer"]
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(f"{where}: build(trial)['optimizer'] must be an fnn.optim optimizer, "
                        f"got {optimizer!r:.80}")
    metrics = config.get("metrics", ())
    metrics = (metrics,) if isinstance(metrics, str) or callable(metrics) else tuple(metrics)
    return TrialConfig(as_layer(config["model"]), config["loss"], optimizer,
                       config.get("batch_size", batch_size), metrics, config.get("penalty"),
                       config.get("augment"))


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a loss or metrics given as dicts or lists."""
    if isinstance(value, Mapping):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def initial_values(model: Any, x: Any, key: Any) -> tuple[Any, Any]:
    """``fit``'s own initial ``(params, state)`` of ``model`` for inputs like ``x``."""
    return jitted_init(model, shape_key(x))(key)


def structure(config: TrialConfig, params: Any) -> tuple[tuple, Any]:
    """``(key, opt_state)``: the static description of a trial's step (equal for trials that
    share a program) and the trial's initial optimizer state.

    The optimizer counts by its state's structure, shapes and dtypes and by
    `fnn.caching.function_key` of its ``update`` (its code and closure, no tracing:
    optimizers that differ only in the values kept in their states have equal keys).
    """
    opt_state = config.optimizer.init(params)
    return (config.model, _frozen(config.loss), _frozen(config.metrics), config.batch_size,
            config.penalty, config.augment, shape_key(opt_state),
            function_key(config.optimizer.update)), opt_state


def describe(config: TrialConfig) -> str:
    """A short name of a group's structure, for the trials' user attributes."""
    model = repr(config.model)
    model = model if len(model) <= 120 else model[:117] + "..."
    return f"{model}, batch_size={config.batch_size}"
