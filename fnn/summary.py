"""Parameter counts and model summary tables, computed without running the model.

`summary_rows` evaluates ``model.init`` and each layer's ``apply`` with
`jax.eval_shape`: only shapes and dtypes are propagated, nothing is
allocated or computed, so summarising a model with billions of parameters is
instant and ``x`` may be a `jax.ShapeDtypeStruct`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import numpy as np

from fnn.errors import LayerError
from fnn.layers.base import Layer, input_struct, layer_repr
from fnn.layers.function import as_layer
from fnn.layers.parallel import Parallel
from fnn.layers.residual import Residual
from fnn.layers.sequential import Sequential
from fnn.layers.transformer import EncoderDecoder

__all__ = ["count_params", "count_bytes", "SummaryRow", "summary_rows", "summary"]


def _leaf_shape_dtype(leaf: Any) -> tuple[tuple[int, ...], np.dtype]:
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return tuple(leaf.shape), leaf.dtype
    leaf = np.asarray(leaf)
    return leaf.shape, leaf.dtype


def count_params(params: Any) -> int:
    """Number of scalars in a pytree: ``sum over leaves of prod(leaf.shape)``.

    Works on arrays, tracers and ``jax.ShapeDtypeStruct`` leaves (no data is read).

    Args:
      params: a pytree of arrays (or of shape/dtype structs).

    Returns:
      the count, a Python int.

    Examples:
      >>> fnn.count_params({"w": jnp.zeros((2, 3)), "b": jnp.zeros((3,))})
      9
    """
    return sum(math.prod(_leaf_shape_dtype(leaf)[0]) for leaf in jax.tree.leaves(params))


def count_bytes(params: Any) -> int:
    """Memory of a pytree's arrays: ``sum of prod(shape) * itemsize`` (4 per float32).

    Args:
      params: a pytree of arrays (or of shape/dtype structs).

    Returns:
      bytes, a Python int.

    Examples:
      >>> from fnn.summary import count_bytes
      >>> count_bytes({"w": jnp.zeros((2, 3)), "b": jnp.zeros((3,), jnp.bfloat16)})
      30
    """
    total = 0
    for leaf in jax.tree.leaves(params):
        shape, dtype = _leaf_shape_dtype(leaf)
        total += math.prod(shape) * np.dtype(dtype).itemsize
    return total


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One row of `summary`: a leaf layer of the model.

    Attributes:
      path: the layer's path in ``params`` (``"2/0"`` is ``params["2"]["0"]``);
        ``""`` when the model itself is the only layer.
      layer: the layer's short repr, e.g. ``"Dense(features=10)"``.
      output_shape: shape of its output (a pytree of shapes for pytree outputs).
      output_dtype: dtype of its output (a pytree of dtypes for pytree outputs).
      params: number of parameters (`count_params`).
      bytes: bytes of those parameters (`count_bytes`).
      state: number of state values (e.g. running statistics).
    """

    path: str
    layer: str
    output_shape: Any
    output_dtype: Any
    params: int
    bytes: int
    state: int


def _walk(layer: Layer, params: Any, state: Any, x: Any, path: tuple[str, ...],
          rows: list[SummaryRow]) -> Any:
    if isinstance(layer, Sequential):
        for name, child in zip(layer.child_names, layer.layers):
            x = _walk(child, params[name], state.get(name, {}), x, path + (name,), rows)
        return x
    if isinstance(layer, Parallel):
        outputs = [_walk(child, params[name], state.get(name, {}), x, path + (name,), rows)
                   for name, child in zip(layer.names, layer.layers)]
        return dict(zip(layer.names, outputs)) if layer.named else tuple(outputs)
    if isinstance(layer, Residual):
        for name, child in layer._parts():
            _walk(child, params[name], state.get(name, {}), x, path + (name,), rows)
        y, _ = _shape_of(layer, params, state, x, path)
        rows.append(_row(path, "Residual: x + f(x)" if layer.shortcut is None
                         else "Residual: shortcut(x) + f(x)", y, {}, {}))
        return y
    if isinstance(layer, EncoderDecoder):          # its parts, in the order data flows
        return layer._forward(lambda name, child, inputs: _walk(
            child, params[name], state.get(name, {}), inputs, path + (name,), rows), x)
    y, _ = _shape_of(layer, params, state, x, path)
    rows.append(_row(path, layer_repr(layer), y, params, state))
    return y


def _shape_of(layer: Layer, params: Any, state: Any, x: Any, path: tuple[str, ...]) -> Any:
    try:
        return jax.eval_shape(functools.partial(layer.apply, train=False), params, state, x)
    except LayerError as err:
        for name in reversed(path):
            err = err.with_parent(name)
        raise err from None


def _row(path: tuple[str, ...], name: str, y: Any, params: Any, state: Any) -> SummaryRow:
    return SummaryRow(
        path="/".join(path), layer=name,
        output_shape=jax.tree.map(lambda s: tuple(s.shape), y),
        output_dtype=jax.tree.map(lambda s: s.dtype, y),
        params=count_params(params), bytes=count_bytes(params), state=count_params(state))


def summary_rows(model: Any, x: Any, *, key: jax.Array | None = None, params: Any = None,
                 state: Any = None) -> list[SummaryRow]:
    """The rows of `summary`: one `SummaryRow` per leaf layer.

    Nested `fnn.Sequential` models are expanded down to their leaf
    layers (path ``"1/0"`` etc.), and so are the branches of
    `fnn.Parallel` (path ``"2/digit"``) and the parts of
    `fnn.Residual` (``"3/layer/0"``, then a row for the sum at
    ``"3"``); any other layer is one row.

    Args:
      model: a layer, or a plain ``apply(params, x)`` function (then pass ``params``).
      x: an example input, or a ``jax.ShapeDtypeStruct``.
      key: init key (only its type matters; default ``jax.random.key(0)``).
      params: use these (shapes of) parameters instead of ``model.init``'s.
      state: the state going with ``params`` (default ``{}``).

    Returns:
      a list of `SummaryRow`.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(3), fnn.Activation("relu"), fnn.Dense(1)])
      >>> rows = fnn.summary_rows(model, jax.ShapeDtypeStruct((32, 2), jnp.float32))
      >>> [(r.path, r.output_shape, r.params) for r in rows]
      [('0', (32, 3), 9), ('1', (32, 3), 0), ('2', (32, 1), 4)]
    """
    model = as_layer(model)
    from fnn.layers.base import is_shape, shape_instead_of_input
    if is_shape(x):
        raise TypeError(shape_instead_of_input("summary", x))
    x = jax.tree.map(input_struct, x)
    if params is None:
        if key is None:
            key = jax.eval_shape(jax.random.key, 0)
        params, init_state = jax.eval_shape(model.init, key, x)
        state = init_state if state is None else state
    params = jax.tree.map(input_struct, params)
    state = jax.tree.map(input_struct, {} if state is None else state)
    rows: list[SummaryRow] = []
    _walk(model, params, state, x, (), rows)
    return rows


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


def summary(model: Any, x: Any, *, key: jax.Array | None = None, params: Any = None,
            state: Any = None, width: int | None = 100) -> str:
    """A table of the model's layers: path, layer, output shape, parameters, bytes.

    Computed with `jax.eval_shape` only (see `summary_rows`, which
    returns the same information as data). The last line gives the totals.
    Models with state (e.g. running statistics) get a ``State`` column (counts).

    Args:
      model: a layer, or a plain ``apply(params, x)`` function (then pass ``params``).
      x: an example input, or a ``jax.ShapeDtypeStruct``.
      key: init key (only its type matters).
      params: use these (shapes of) parameters instead of ``model.init``'s.
      state: the state going with ``params``.
      width: the table's widest line; longer layer descriptions are cut with
        ``...`` to fit (``None``: never cut; `summary_rows` has them whole).

    Returns:
      the table as a string (print it).

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(2), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> print(fnn.summary(model, jnp.zeros((4, 2))))
      Path  Layer                  Output shape  Params  Bytes
      ----  ---------------------  ------------  ------  -----
      0     Dense(features=2)      (4, 2)        6       24 B
      1     Activation(fn='tanh')  (4, 2)        0       0 B
      2     Dense(features=1)      (4, 1)        3       12 B
      Total: 9 parameters (36 B)
    """
    rows = summary_rows(model, x, key=key, params=params, state=state)
    with_state = any(r.state for r in rows)
    header = ["Path", "Layer", "Output shape", "Params", "Bytes"] + (["State"] * with_state)
    table = [[r.path or "-", r.layer, str(r.output_shape), f"{r.params:,}",
              _human_bytes(r.bytes)] + ([f"{r.state:,}"] * with_state) for r in rows]
    widths = [max(len(line[c]) for line in [header] + table) for c in range(len(header))]
    excess = sum(widths) + 2 * (len(widths) - 1) - (width or sum(widths) + 2 * len(widths))
    if excess > 0:
        widths[1] = max(len("Layer"), 24, widths[1] - excess)
        for line in table:
            if len(line[1]) > widths[1]:
                line[1] = line[1][:widths[1] - 3] + "..."

    def fmt(cells):
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths)).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in table]
    n_params = sum(r.params for r in rows)
    n_bytes = sum(r.bytes for r in rows)
    total = f"Total: {n_params:,} parameters ({_human_bytes(n_bytes)})"
    if with_state:
        total += f", {sum(r.state for r in rows):,} state values"
    return "\n".join(lines + [total])
