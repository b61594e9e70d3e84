"""Training diagnostics computed inside the compiled step: `Monitor`.

``fit(..., monitor=fnn.train.Monitor())`` adds to every ``every``-th step,
without a trip to the host:

- per layer with parameters (the leaves under one path: ``"0"``,
  ``"body/conv1"``), with ``g_t`` its gradient at step ``t``, ``u_t`` the
  optimizer's update and ``theta`` its parameters at the end of the epoch:
  ``grad_norm/<layer> = sqrt(mean_t ||g_t||^2)``, ``param_norm/<layer> =
  ||theta||``, ``update_ratio/<layer> = sqrt(mean_t ||u_t||^2) / ||theta||``
  (around ``1e-3`` is healthy for SGD on most networks; far smaller: the
  layer barely learns); the means are over the epoch's monitored steps (the
  root mean square of the per-step norms: the squares are summed on the
  device step by step, fused with the update, and reduced once per epoch);
- per `fnn.Activation` layer (by its path), over the step's outputs
  ``a``: ``activation_mean/<path>`` and ``activation_std/<path>``; for the
  ReLU family (``relu``, ``relu6``) the units (last axis) that were never
  positive on any example of the whole epoch, as keras-contrib's
  DeadReluDetector defines them: ``dead_units/<path>`` (a count) and
  ``dead_fraction/<path>``; for ``sigmoid`` and ``tanh`` the fraction of
  outputs in the flat tails, ``saturated_fraction/<path>`` (sigmoid below
  0.01 or above 0.99, tanh beyond +-0.99: the derivative is under 1% of
  its maximum there).

An activation's mean, std and saturated fraction are over the epoch's
monitored outputs (the std is ``sqrt(E[a^2] - E[a]^2)``); a unit is dead
when it was never active in any monitored step. The numbers go into ``history`` under these names (and into
TensorBoard with the rest of the history); `fnn.train.plot_monitor`
draws them and `fnn.train.diagnose` reads them.

Without a monitor nothing here runs: the step is the same program.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from fnn import activations
from fnn.layers import scope
from fnn.layers.activation import Activation
from fnn.regularizers import key_path
from fnn.validation import check_int

RELU_FAMILY = {activations.relu: "relu", jax.nn.relu: "relu", jax.nn.relu6: "relu"}
SATURATING = {activations.sigmoid: "sigmoid", jax.nn.sigmoid: "sigmoid",
              activations.tanh: "tanh", jnp.tanh: "tanh", jax.nn.tanh: "tanh"}


@dataclasses.dataclass(frozen=True)
class Monitor:
    """What to measure inside the training step (see `fnn.train.step.monitor`).

    Args:
      every: measure every ``every``-th step of an epoch (steps ``0, every, 2 every, ...``).
      gradients: per-layer gradient and parameter norms and update ratios.
      activations: per-activation-layer statistics, dead and saturated units.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dense(1)])
      >>> x = np.linspace(-1, 1, 32, dtype=np.float32).reshape(-1, 1)
      >>> result = fnn.fit(model, "mse", fnn.optim.sgd(0.1), (x, x ** 2), epochs=2,
      ...                  batch_size=8, key=jax.random.key(0), progress=False,
      ...                  monitor=fnn.train.Monitor())
      >>> sorted(name for name in result.history if "/" in name)[:4]
      ['activation_mean/1', 'activation_std/1', 'dead_fraction/1', 'dead_units/1']
      >>> len(result.history["grad_norm/0"])
      2
    """

    every: int = 1
    gradients: bool = True
    activations: bool = True

    def __post_init__(self):
        check_int("Monitor", "every", self.every)


def check_monitor_option(where: str, monitor: Any) -> Any:
    """``monitor`` if it is ``None`` or a `Monitor`; a ``TypeError`` otherwise."""
    if monitor is not None and not isinstance(monitor, Monitor):
        hint = (" (early stopping's monitored number goes in EarlyStopping(monitor=...))"
                if isinstance(monitor, str) else "")
        raise TypeError(f"{where}: monitor must be a fnn.train.Monitor(...), got "
                        f"{monitor!r:.60}{hint}")
    return monitor


def activation_kind(layer: Any, y: Any) -> str | None:
    """``"relu"``, ``"sigmoid"``, ``"tanh"`` or ``"other"`` for an `fnn.Activation` with a
    floating output ``y``; ``None`` for any other layer (not monitored)."""
    if not (isinstance(layer, Activation) and hasattr(y, "dtype")
            and jnp.issubdtype(y.dtype, jnp.floating)):
        return None
    return RELU_FAMILY.get(layer.function) or SATURATING.get(layer.function) or "other"


class ActivationStatistics(scope.Interceptor):
    """An interceptor (`fnn.layers.scope.intercept`) that reduces every activation
    layer's output to its step statistics as the model runs (the outputs themselves are
    not kept), and notes every layer's path in the order the layers finish."""

    def __init__(self):
        self.numbers: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.paths: list[str] = []

    def output(self, path: str, layer: Any, y: Any) -> Any:
        self.paths.append(path)
        kind = activation_kind(layer, y)
        if kind is not None:
            self.kinds[path or "model"] = kind
            self.numbers[path or "model"] = statistics(kind, jax.lax.stop_gradient(y))
        return y


def statistics(kind: str, y: jax.Array) -> dict:
    """One step's numbers of an activation output ``y``, per unit (last axis), averaged over
    the other axes: ``{kind: rows}`` with the rows ``y``, ``y^2`` and, for the ReLU family,
    ``y > 0`` (active) or, for sigmoid and tanh, the saturated indicator (one fused
    reduction)."""
    y = y.astype(jnp.float32).reshape(-1, y.shape[-1])
    rows = [y, y * y]
    if kind == "relu":
        rows.append((y > 0).astype(jnp.float32))
    elif kind == "sigmoid":
        rows.append(((y < 0.01) | (y > 0.99)).astype(jnp.float32))
    elif kind == "tanh":
        rows.append((jnp.abs(y) > 0.99).astype(jnp.float32))
    return {kind: jnp.mean(jnp.stack(rows), axis=1)}


def run_model(cfg: Any, apply: Any) -> tuple[Any, dict | None]:
    """``apply()`` (the model's forward pass), with the activation statistics when the
    step's monitor asks for them: ``(apply's result, statistics or None)``."""
    monitor = getattr(cfg, "monitor", None)
    if monitor is None or not monitor.activations:
        return apply(), None
    recorder = ActivationStatistics()
    with scope.intercept(recorder):
        result = apply()
    return result, recorder.numbers


def layer_groups(params: Any) -> dict[str, list[int]]:
    """``{layer path: [its leaves' positions in jax.tree.leaves(params)]}``: leaves grouped
    by the dict that holds them (a leaf directly at the top is its own group)."""
    groups: dict[str, list[int]] = {}
    for i, (path, _) in enumerate(jax.tree_util.tree_leaves_with_path(params)):
        names = key_path(path)
        groups.setdefault("/".join(names[:-1]) or "/".join(names) or "params", []).append(i)
    return groups


def _norms(squares: Any, groups: dict) -> dict:
    """``{layer: sum of its leaves' summed squares}`` (``squares`` shaped like the params)."""
    leaves = jax.tree.leaves(squares)
    return {layer: sum(jnp.sum(leaves[i]) for i in positions)
            for layer, positions in groups.items()}


def step_numbers(monitor: Monitor, grads: Any, updates: Any, activation_numbers: dict | None,
                 index: Any) -> dict:
    """The step's monitor sums (all zero on a step that is not monitored), to add up over the
    epoch (`results` turns the sums into the epoch's numbers)."""
    numbers: dict[str, Any] = {"steps": jnp.float32(1)}
    if monitor.gradients:     # squares summed over the steps, reduced once per epoch
        square = lambda tree: jax.tree.map(lambda a: jnp.square(a.astype(jnp.float32)), tree)
        numbers["squares"] = {"grad": square(grads), "update": square(updates)}
    if activation_numbers:
        numbers["activations"] = activation_numbers
    if index is None or monitor.every == 1:
        return numbers
    monitored = jnp.asarray(index) % monitor.every == 0
    return jax.tree.map(lambda v: jnp.where(monitored, v, jnp.zeros_like(v)), numbers)


def results(sums: dict, params: Any) -> dict:
    """The epoch's numbers from its monitor sums and the epoch's final ``params``:
    ``{"grad_norm/0": ..., ...}``."""
    steps = jnp.maximum(sums["steps"], 1.0)
    out = {}
    if "squares" in sums:
        squares = sums["squares"]
        groups = layer_groups(params)
        grad, update = (_norms(squares[part], groups) for part in ("grad", "update"))
        theta = _norms(jax.tree.map(lambda a: jnp.square(a.astype(jnp.float32)), params),
                       groups)
        for layer in groups:
            out[f"grad_norm/{layer}"] = jnp.sqrt(grad[layer] / steps)
            out[f"param_norm/{layer}"] = jnp.sqrt(theta[layer])
            out[f"update_ratio/{layer}"] = jnp.sqrt(update[layer] / steps / jnp.maximum(
                theta[layer], 1e-24))
    for path, numbers in sums.get("activations", {}).items():
        (kind, rows), = numbers.items()
        mean, square = jnp.mean(rows[0]) / steps, jnp.mean(rows[1]) / steps
        out[f"activation_mean/{path}"] = mean
        out[f"activation_std/{path}"] = jnp.sqrt(jnp.maximum(square - mean * mean, 0.0))
        if kind == "relu":
            dead = jnp.sum((rows[2] == 0).astype(jnp.float32))
            out[f"dead_units/{path}"] = dead
            out[f"dead_fraction/{path}"] = dead / rows.shape[1]
        elif kind in ("sigmoid", "tanh"):
            out[f"saturated_fraction/{path}"] = jnp.mean(rows[2]) / steps
    return out


def zeros(cfg: Any, params: Any, state: Any, x: Any) -> dict:
    """The epoch's monitor sums at zero, shaped from ``params`` and an abstract batch ``x``
    (`jax.eval_shape`: nothing is computed)."""
    numbers: dict[str, Any] = {"steps": jnp.zeros([], jnp.float32)}
    if cfg.monitor.gradients:
        zero = jax.tree.map(lambda a: jnp.zeros(a.shape, jnp.float32), params)
        numbers["squares"] = {"grad": zero, "update": zero}
    if cfg.monitor.activations:
        found = jax.eval_shape(lambda p, s, v: run_model(
            cfg, lambda: cfg.model.apply(p, s, v, train=False))[1], params, state, x)
        if found:
            numbers["activations"] = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), found)
    return numbers


def history_names(cfg: Any, params: Any, state: Any, x: Any) -> tuple[str, ...]:
    """The names the monitor adds to the history, layers in the order the model runs them
    (found with `jax.eval_shape` on an abstract batch ``x``: nothing is computed)."""
    if cfg.monitor is None:
        return ()
    order = ActivationStatistics()

    def forward(p, s, v):
        with scope.intercept(order):
            return cfg.model.apply(p, s, v, train=False)[0]
    jax.eval_shape(forward, params, state, x)
    rank = {path: i for i, path in enumerate(order.paths)}

    def position(layer: str) -> int:
        inside = [p for p in rank if p == layer or layer.startswith(p + "/") or p == ""]
        return rank[max(inside, key=len)] if inside else len(rank)
    groups = list(layer_groups(params))
    layers = sorted(groups, key=lambda layer: (position(layer), groups.index(layer)))
    names: list[str] = []
    if cfg.monitor.gradients:
        names += [f"{family}/{layer}" for family in ("grad_norm", "param_norm", "update_ratio")
                  for layer in layers]
    if cfg.monitor.activations:
        for path, kind in order.kinds.items():
            names += [f"activation_mean/{path}", f"activation_std/{path}"]
            names += ([f"dead_units/{path}", f"dead_fraction/{path}"] if kind == "relu" else
                      [f"saturated_fraction/{path}"] if kind in ("sigmoid", "tanh") else [])
    return tuple(names)
