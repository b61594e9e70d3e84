"""Input checks of ``fnn.fit`` / ``fnn.evaluate``: clear errors before anything compiles.

Shapes are checked by tracing the model, the loss and the metrics with
:func:`jax.eval_shape` on abstract values: no computation and no compilation.
The outcome is cached per configuration and shapes
(:func:`fnn.caching.shape_key`), so a second ``fit`` with the same shapes
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
from fnn.train.config import TrainConfig
from fnn.train.outputs import loss_parts


def _shape(a: Any) -> tuple:
    return tuple(np.shape(a))


def check_argument_order(where: str, loss: Any, optimizer: Any, data: Any) -> None:
    """``TypeError`` for Keras's order ``fit(model, (x, y), loss, optimizer)``: fnn's is
    ``fit(model, loss, optimizer, (x, y))``, and the swap would otherwise surface as a
    confusing error about ``x`` being a function."""
    from fnn.optim.base import GradientTransformation

    def looks_like_data(value: Any) -> bool:
        return (isinstance(value, (tuple, list)) and len(value) == 2
                and not isinstance(value, GradientTransformation)
                and all(hasattr(v, "shape") or isinstance(v, (list, dict)) for v in value))

    if isinstance(data, GradientTransformation) or looks_like_data(loss):
        got = []
        if looks_like_data(loss):
            got.append("the data (x, y) as loss")
        if isinstance(data, GradientTransformation):
            got.append("an optimizer as data")
        raise TypeError(f"{where}: the arguments are {where}(model, loss, optimizer, (x, y), "
                        f"...) (loss and optimizer before the data, unlike Keras's "
                        f"model.fit(x, y)); got {' and '.join(got)}")


def check_data(where: str, data: Any, name: str) -> tuple[Any, Any]:
    """``(x, y)`` from ``data``; ``ValueError`` unless it is a pair of arrays of equal length.

    Python lists become numpy arrays; tuples and dicts are pytrees of arrays.

    Example:
      >>> x, y = fnn.train.checks.check_data("fit", (np.zeros((3, 2)), np.zeros(3)), "data")
      >>> fnn.train.checks.check_data("fit", (np.zeros((3, 2)), np.zeros(4)), "data")
      Traceback (most recent call last):
      ...
      ValueError: fit: data=(x, y) must have as many examples in x as in y; x has shape (3, 2) (3 examples), y has shape (4,) (4 examples)
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        got = type(data).__name__
        if isinstance(data, (tuple, list)):
            got += f" of length {len(data)}"
        raise ValueError(f"{where}: {name} must be a pair (x, y) of arrays, got {got}")
    x, y = (np.asarray(part) if isinstance(part, list) else part for part in data)
    lengths = []
    for part, value in (("x", x), ("y", y)):
        leaves = jax.tree.leaves(value)
        if not leaves or any(np.ndim(a) == 0 for a in leaves):
            raise ValueError(f"{where}: {name}=(x, y): {part} must be an array with a leading "
                             f"batch axis, got {value!r:.80}")
        sizes = {_shape(a)[0] for a in leaves}
        if len(sizes) != 1:
            raise ValueError(f"{where}: the arrays in {name} {part} differ in length: "
                             f"{[_shape(a) for a in leaves]}")
        lengths.append(sizes.pop())
    if lengths[0] != lengths[1]:
        raise ValueError(
            f"{where}: {name}=(x, y) must have as many examples in x as in y; x has shape "
            f"{_describe(x)} ({lengths[0]} examples), y has shape {_describe(y)} "
            f"({lengths[1]} examples)")
    if lengths[0] == 0:
        raise ValueError(f"{where}: {name} has no examples (x has shape {_describe(x)})")
    return x, y


def check_key(where: str, key: Any) -> Any:
    """``key`` if it is one PRNG key (typed, or raw uint32 of shape ``(2,)``); ``ValueError``
    naming ``where`` otherwise."""
    if not isinstance(key, jax.Array) or not (
            (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ())
            or (key.dtype == jnp.uint32 and key.shape == (2,))):
        raise ValueError(f"{where}: key must be a PRNG key such as jax.random.key(0), got "
                         f"{key!r:.80}")
    return key


def check_input_values(where: str, model: Any, x: Any, data_name: str = "data") -> None:
    """``ValueError`` if a layer that sees the raw input rejects its concrete values
    (:func:`fnn.layers.base.check_input_values`; e.g. ``Embedding`` ids out of range)."""
    layers_check_input_values(model, x, f"{where}: {data_name} x" if data_name else where)


def _describe(tree: Any) -> Any:
    return _shape(tree) if is_leaf(tree) else jax.tree.map(_shape, tree)


def is_leaf(tree: Any) -> bool:
    """One array (not a dict/tuple holding one), so messages show the structure it has."""
    return jax.tree.structure(tree).num_nodes == 1


def struct(tree: Any) -> Any:
    """``tree`` as ``jax.ShapeDtypeStruct`` leaves.

    Leaves take the dtype they get on the device (float64 numpy becomes float32).
    """
    def one(a):
        dtype = jax.dtypes.canonicalize_dtype(a.dtype if hasattr(a, "dtype") else np.result_type(a))
        return jax.ShapeDtypeStruct(_shape(a), dtype)
    return jax.tree.map(one, tree)


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
        raise ValueError(f"{where}: the model cannot take x of shape {_describe(x)} "
                         f"({_dtypes(x)}) with the given params: {err}") from err
    _check_labels_fit(where, cfg, out, y)
    builtin = losses_module.is_builtin(cfg.loss_fn)
    if not is_leaf(out) and builtin:   # a custom loss may take the whole tree
        raise ValueError(
            f"{where}: the model has several outputs ({_describe(out)}) but one loss "
            f"{_name(cfg.loss_fn)}; give a loss per output with the outputs' structure, e.g. "
            "loss={'digit': 'sparse_softmax_cross_entropy', 'parity': ...} for dict outputs or "
            "a list of losses for tuple outputs (optionally loss_weights=...)")
    try:
        loss = jax.eval_shape(cfg.loss_fn, out, y)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{where}: loss {_name(cfg.loss_fn)} rejects the model output of shape "
            f"{_describe(out)} ({_dtypes(out)}) with targets y of shape {_describe(y)} "
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
                             f"{_describe(out)} with targets y of shape {_describe(y)}: "
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
            f"{where}: metric {name!r} is a classification metric (it counts predicted "
            f"classes), but the loss {_name(cfg.loss_fn)} is not a classification loss and "
            f"the model output {_describe(out)} with {y.dtype} targets y {_describe(y)} say "
            f"regression; for regression use a metric that measures errors (a callable such "
            f"as metrics={{'mae': fnn.losses.mae}}), for classification a classification "
            f"loss (e.g. "
            f"'bce_with_logits' with 0/1 labels)") from err


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


def check_finite_inputs(where: str, x: Any, data_name: str = "data") -> None:
    """``ValueError`` naming the first non-finite value (NaN or inf) of the concrete inputs
    ``x`` (its example row and position), before anything is compiled: inside training a
    NaN input only shows up as a NaN loss after a whole epoch.

    Example:
      >>> x = np.ones((4, 3), np.float32); x[2, 1] = np.nan
      >>> fnn.train.checks.check_finite_inputs("fit", x)
      Traceback (most recent call last):
      ...
      ValueError: fit: data x has a non-finite value (nan) at row 2, position (1,) (x[2, 1]); ...
    """
    for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.inexact):
            continue
        values = np.asarray(leaf)         # (no XLA program: nothing to compile)
        if np.isfinite(values).all():
            continue
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
        part = "x" + jax.tree_util.keystr(path)
        raise ValueError(
            f"{where}: {data_name} {part} has a non-finite value ({values[index]}) at row "
            f"{index[0]}, position {index[1:]} ({part}[{', '.join(map(str, index))}]); every "
            f"loss it touches would be NaN. Remove or impute such values first (e.g. "
            f"np.nan_to_num, or drop the rows np.isfinite(x).all(axis=1) rejects)")


def _dtypes(tree: Any) -> Any:
    return str(tree.dtype) if is_leaf(tree) else jax.tree.map(lambda a: str(a.dtype), tree)


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or repr(fn)
