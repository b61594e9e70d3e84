"""Checks of the data against the step's configuration (``fnn.fit`` / ``fnn.evaluate``):
clear errors before anything compiles. The checks of the data alone live in
`fnn.train.data.checks` (re-exported here).

Shapes are checked by tracing the model, the loss and the metrics with
`jax.eval_shape` on abstract values: no computation and no compilation.
The outcome is cached per configuration and shapes
(`fnn.caching.shape_key`), so a second ``fit`` with the same shapes
traces nothing again.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses as losses_module
from fnn.caching import memoize, shape_key, structs_of_key
from fnn.layers.base import check_input_values as layers_check_input_values
from fnn.train.data.checks import (check_argument_order, check_data, check_finite_inputs,  # noqa: F401
                                   check_key, check_validation_data, describe, is_leaf,
                                   shape_of, struct)
from fnn.train.step.train_config import TrainConfig
from fnn.train.step.outputs import loss_parts


def check_data_values(where: str, cfg: TrainConfig, out: Any, x: Any, y: Any,
                      data_name: str = "") -> None:
    """The checks of concrete values (label ranges, a layer's input values such as
    Embedding ids): once for data in memory, per block for streamed data. ``out`` is the
    model output's structure (`check_shapes`)."""
    check_label_range(where, cfg, y, out, data_name)
    check_input_values(where, cfg.model, x, data_name or "data")


def check_input_values(where: str, model: Any, x: Any, data_name: str = "data") -> None:
    """``ValueError`` if a layer that sees the raw input rejects its concrete values
    (`fnn.layers.base.check_input_values`; e.g. ``Embedding`` ids out of range)."""
    layers_check_input_values(model, x, f"{where}: {data_name} x" if data_name else where)


def check_shapes(where: str, cfg: TrainConfig, params: Any, state: Any, x: Any, y: Any,
                 *, train: bool = True) -> Any:
    """Trace model, loss and metrics on abstract ``x``/``y`` batches; ``ValueError`` on a mismatch.

    Args:
      where: the calling function, named in messages.
      cfg: the train configuration (model, loss, metrics).
      params, state: arrays or structs.
      x, y: one batch (arrays or structs).
      train: trace the model in training mode.

    Returns:
      The model output's ``jax.ShapeDtypeStruct`` (pytree).
    """
    return _check_shapes_cached(where, cfg, train, *(shape_key(a) for a in (params, state, x, y)))


@memoize
def _check_shapes_cached(where, cfg, train, params_key, state_key, x_key, y_key):
    params, state, x, y = (structs_of_key(k) for k in (params_key, state_key, x_key, y_key))
    key = jax.eval_shape(jax.random.key, 0)  # an abstract key: nothing is computed

    def forward(params, state, x, key):
        xc = x if cfg.policy is None else cfg.policy.cast_to_compute(x)
        out, _ = cfg.model.apply(params, state, xc, key=key, train=train)
        return out if cfg.policy is None else cfg.policy.cast_to_output(out)

    try:
        out = jax.eval_shape(forward, params, state, x, key)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: the model cannot take x of shape {describe(x)} "
                         f"({_dtypes(x)}) with the given params: {err}") from err
    _check_labels_fit(where, cfg, out, y)
    builtin = losses_module.is_builtin(cfg.loss_fn)
    if not is_leaf(out) and builtin:   # a custom loss may take the whole tree
        raise ValueError(
            f"{where}: the model has several outputs ({describe(out)}) but one loss "
            f"{_name(cfg.loss_fn)}; give a loss per output with the outputs' structure, e.g. "
            "loss={'digit': 'sparse_softmax_cross_entropy', 'parity': ...} for dict outputs or "
            "a list of losses for tuple outputs (optionally loss_weights=...)")
    try:
        loss = jax.eval_shape(cfg.loss_fn, out, y)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{where}: loss {_name(cfg.loss_fn)} rejects the model output of shape "
            f"{describe(out)} ({_dtypes(out)}) with targets y of shape {describe(y)} "
            f"({_dtypes(y)}): {err}") from err
    if getattr(loss, "shape", None) != ():
        raise ValueError(f"{where}: loss {_name(cfg.loss_fn)} must return a scalar (a mean "
                         f"over the batch), got shape {getattr(loss, 'shape', loss)}")
    for name, fn in cfg.metric_fns:
        try:
            value = jax.eval_shape(fn, out, y)
        except (ValueError, TypeError) as err:
            _refuse_classification_metric_on_regression(where, cfg, name, out, y, err)
            raise ValueError(f"{where}: metric {name!r} rejects the model output of shape "
                             f"{describe(out)} with targets y of shape {describe(y)}: "
                             f"{err}") from err
        if getattr(value, "shape", None) != ():
            raise ValueError(f"{where}: metric {name!r} must return a scalar, got shape "
                             f"{getattr(value, 'shape', value)}")
    return out


def _refuse_classification_metric_on_regression(where: str, cfg: TrainConfig, name: str,
                                                out: Any, y: Any, err: Exception) -> None:
    """A threshold metric (precision, recall, F1, AUC) that cannot tell logits from
    probabilities because the loss is not a classification loss and the targets are not
    labels: say that the task looks like regression, not how to set ``from_logits``."""
    if "from_logits" not in str(err) or not is_leaf(out) or not is_leaf(y):
        return
    try:
        kind = losses_module.output_kind(cfg.loss_fn)
    except (ValueError, TypeError):
        return
    if kind is None and not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(
            f"{where}: metric {name!r} is a classification metric (it reads the outputs as "
            f"predicted classes), but the loss {_name(cfg.loss_fn)} is not a classification "
            f"loss and the model output {describe(out)} with {y.dtype} targets y {describe(y)} say "
            f"regression. For regression use a metric that measures errors (a callable such "
            f"as metrics={{'mae': fnn.losses.mae}}); for classification use a "
            f"classification loss (e.g. 'bce_with_logits' with 0/1 labels), or, with a loss "
            f"of your own, say how the metric reads the outputs: "
            f"fnn.metrics.get({name!r}, from_logits=True)") from err


def _check_labels_fit(where: str, cfg: TrainConfig, out: Any, y: Any) -> None:
    for label, loss_fn, out_k, y_k in loss_parts(cfg.loss_fn, out, y):
        if (loss_fn is losses_module.sparse_softmax_cross_entropy and hasattr(out_k, "shape")
                and hasattr(y_k, "dtype") and not jnp.issubdtype(y_k.dtype, jnp.integer)):
            raise ValueError(
                f"{where}: {label}loss sparse_softmax_cross_entropy needs integer class labels "
                f"y, got y of dtype {y_k.dtype} and shape {y_k.shape}; model output shape "
                f"{out_k.shape}. For one-hot targets use softmax_cross_entropy.")


_PROBABILITY_TARGETS = (losses_module.binary_cross_entropy,
                        losses_module.binary_cross_entropy_with_logits,
                        losses_module.categorical_cross_entropy,
                        losses_module.softmax_cross_entropy)


def check_label_range(where: str, cfg: TrainConfig, y: Any, out: Any,
                      data_name: str = "") -> None:
    """``ValueError`` if concrete targets fall outside what the loss accepts.

    Sparse labels must lie in ``[0, num_classes)`` (``num_classes``: the last
    axis of the model output ``out``); the targets of the binary and
    categorical cross-entropies in ``[0, 1]`` (0/1 labels, one-hot rows or
    probabilities). Inside the compiled step such values cannot be checked and
    give a wrong loss without an error, so they are checked once, on the host.
    With a loss per output each output is checked against its own loss.

    Args:
      where: the calling function, named in messages.
      cfg: the train configuration (its loss).
      y: the concrete targets.
      out: the model output's ``jax.ShapeDtypeStruct`` (pytree).
      data_name: which data, for the message (e.g. ``"validation_data"``).
    """
    for label, loss_fn, out_k, y_k in loss_parts(cfg.loss_fn, out, y):
        num_classes = out_k.shape[-1] if getattr(out_k, "ndim", 0) else None
        _check_range(where, loss_fn, y_k, num_classes, label, data_name)


def _check_range(where: str, loss_fn: Any, y: Any, num_classes: int | None, label: str,
                 data_name: str) -> None:
    if not hasattr(y, "shape") or not np.size(y):
        return
    if loss_fn is losses_module.sparse_softmax_cross_entropy and num_classes:
        low, high, allowed = 0, num_classes - 1, (
            f"[0, {num_classes}) for a model with {num_classes} outputs")
    elif loss_fn in _PROBABILITY_TARGETS:
        low, high, allowed = 0, 1, (f"[0, 1] for loss {_name(loss_fn)} (0/1 labels, "
                                    "one-hot rows or probabilities)")
    else:
        return
    values = np.asarray(y)
    if values.min() < low or values.max() > high:
        prefix = f"{data_name} " if data_name else ""
        raise ValueError(f"{where}: {label}{prefix}labels y must lie in {allowed}, got values "
                         f"from {values.min()} to {values.max()}")


def _dtypes(tree: Any) -> Any:
    return str(tree.dtype) if is_leaf(tree) else jax.tree.map(lambda a: str(a.dtype), tree)


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or repr(fn)
