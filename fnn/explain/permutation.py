"""Permutation importance (Breiman 2001): how much a metric drops when a feature is shuffled.

Equation: for a metric ``M`` on data ``(X, y)`` and feature (or group of
features) ``j``, with ``X^(j,r)`` the data whose column(s) ``j`` are
permuted among the examples by the ``r``-th random permutation,

    I_jr = M(X, y) - M(X^(j,r), y)      (a score: higher is better)
    I_jr = M(X^(j,r), y) - M(X, y)      (a loss: lower is better)

and the importance of ``j`` is the mean and standard deviation of ``I_jr``
over ``r = 1..repeats``. Shuffling a column keeps its distribution and
breaks its link to the target, so a feature the model does not use scores
exactly zero. Model-agnostic (forward passes only); meant for tabular data
``(n, features)``. Correlated features share their importance: shuffle them
together with ``groups``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import losses as losses_module
from fnn import metrics as metrics_module
from fnn.caching import memoize
from fnn.metrics.classification import base_function
from fnn.explain import targets
from fnn.layers.function import as_layer
from fnn.validation import check_int


@dataclasses.dataclass(frozen=True)
class Importances:
    """The result of `permutation_importance`.

    Attributes:
      names: each feature's (or group's) name.
      mean: the mean drop per feature, ``(features,)`` numpy.
      std: its standard deviation over the repeats.
      values: every drop, ``(features, repeats)``.
      score: the metric on the unshuffled data.
      metric: the metric's name.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    values: np.ndarray
    score: float
    metric: str

    def ranked(self) -> list[tuple[str, float, float]]:
        """``(name, mean, std)`` from the most to the least important."""
        order = np.argsort(-self.mean, kind="stable")
        return [(self.names[i], float(self.mean[i]), float(self.std[i])) for i in order]

    def __str__(self) -> str:
        width = max([len("feature")] + [len(n) for n in self.names])
        lines = [f"{self.metric} on the data: {self.score:.4g}; drop when shuffled "
                 f"(mean +- std over {self.values.shape[1]} repeats):",
                 f"{'feature':<{width}}  {'mean':>9}  {'std':>9}"]
        lines += [f"{name:<{width}}  {mean:>9.4g}  {std:>9.4g}" for name, mean, std in
                  self.ranked()]
        return "\n".join(lines)


def resolve_metric(metric: Any, greater_is_better: bool | None,
                   where: str) -> tuple[Callable, bool, str]:
    """``(function, greater_is_better, name)`` of a metric name, a loss name or a callable."""
    if isinstance(metric, str):
        try:
            return metrics_module.get(metric), True, metric
        except ValueError:
            pass
        try:
            return losses_module.get(metric), False, metric
        except ValueError:
            raise ValueError(f"{where}: metric {metric!r} is neither an fnn metric (higher is "
                             "better, e.g. 'accuracy') nor a loss (lower is better, e.g. "
                             "'mse')") from None
    if not callable(metric):
        raise TypeError(f"{where}: metric must be a name or a function (predictions, targets) "
                        f"-> scalar, got {type(metric).__name__}")
    name = metrics_module.metric_name(metric)
    if greater_is_better is None:
        if losses_module.is_builtin(metric):
            return metric, False, name
        base = base_function(metric)
        if getattr(metrics_module, metrics_module.metric_name(base), None) is base:
            return metric, True, name
        raise ValueError(f"{where}: is a higher {name} better (a score) or a lower one (a "
                         "loss)? pass greater_is_better=True or False")
    return metric, bool(greater_is_better), name


def _groups(groups: Any, features: int, where: str) -> tuple[tuple[str, ...], np.ndarray]:
    """``(names, masks)``: one boolean row of ``features`` per group."""
    if groups is None:
        return tuple(str(j) for j in range(features)), np.eye(features, dtype=bool)
    items = list(groups.items()) if isinstance(groups, Mapping) else [
        (",".join(str(int(j)) for j in g), g) for g in groups]
    masks = np.zeros((len(items), features), bool)
    for row, (name, members) in enumerate(items):
        members = np.atleast_1d(np.asarray(members))
        if members.size == 0 or not np.issubdtype(members.dtype, np.integer) or (
                members.min() < 0 or members.max() >= features):
            raise ValueError(f"{where}: group {name!r} must list feature indices in "
                             f"[0, {features - 1}], got {members.tolist()}")
        masks[row, members] = True
    return tuple(str(name) for name, _ in items), masks


def _predict(model: Any, params: Any, state: Any, x: jax.Array, output: Any,
             batch_size: int | None) -> Any:
    def apply(v):
        out = as_layer(model).apply(params, state, v, train=False)[0]
        return targets.select_output(out, output, "permutation_importance")
    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        return apply(x)
    chunks = -(-n // batch_size)
    padded = jnp.concatenate([x, jnp.zeros((chunks * batch_size - n,) + x.shape[1:], x.dtype)])
    out = jax.lax.map(apply, padded.reshape((chunks, batch_size) + x.shape[1:]))
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)


@memoize
def _function(model: Any, metric: Callable, masks: bytes, shape: tuple, repeats: int,
              output: Any, batch_size: int | None):
    masks = np.frombuffer(masks, bool).reshape(shape)

    def run(params, state, x, y, key):
        score = lambda v: jnp.asarray(
            metric(_predict(model, params, state, v, output, batch_size), y), jnp.float32)
        base = score(x)

        def one(index):
            group, repeat = index // repeats, index % repeats
            order = jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(key, group), repeat), x.shape[0])
            shuffled = jnp.where(jnp.asarray(masks)[group][None, :], x[order], x)
            return score(shuffled)

        shuffled = jax.lax.map(one, jnp.arange(masks.shape[0] * repeats))
        return base, shuffled.reshape(masks.shape[0], repeats)
    return jax.jit(run)


def permutation_importance(model: Any, params: Any, state: Any, data: Any, *, metric: Any,
                           key: jax.Array, repeats: int = 5,
                           groups: Sequence[Sequence[int]] | Mapping[str, Sequence[int]] | None
                           = None, greater_is_better: bool | None = None,
                           batch_size: int | None = None, output: Any = None) -> Importances:
    """The drop in ``metric`` when each feature (or group) is shuffled; see
    `fnn.explain.permutation` for the equation.

    Args:
      model, params, state: the model (any: only forward passes).
      data: ``(x, y)`` with ``x`` of shape ``(n, features)``; held-out data
        shows what the model relies on to generalise.
      metric: an fnn metric name (``"accuracy"``; higher is better), a loss
        name (``"mse"``; lower is better) or a function ``(predictions,
        targets) -> scalar`` (then say ``greater_is_better`` unless it is one
        of fnn's).
      key: the PRNG key of the permutations (feature ``j``, repeat ``r`` uses
        ``fold_in(fold_in(key, j), r)``).
      repeats: permutations per feature.
      groups: features shuffled together: a list of index lists (named by
        their indices) or a dict ``{name: indices}``; ``None``: each feature alone.
      greater_is_better: whether a higher metric is better (for a function of one's own).
      batch_size: examples per model call (``None``: all at once).
      output: the output the metric reads, for a model with several.

    Returns:
      `Importances` (``names``, ``mean``, ``std``, ``values``,
      ``score``); ``print`` shows a ranked table.

    Raises:
      ValueError: ``x`` not ``(n, features)``, a group with an index out of
        range, an unknown metric, a function metric without ``greater_is_better``.

    Examples:
      >>> model = fnn.Dense(1)
      >>> params = {"w": jnp.array([[2.0], [0.0]]), "b": jnp.array([0.0])}
      >>> x = jax.random.normal(jax.random.key(0), (64, 2)); y = 2 * x[:, :1]
      >>> result = fnn.explain.permutation_importance(model, params, {}, (x, y), metric="mse",
      ...                                             key=jax.random.key(1))
      >>> bool(result.mean[0] > 1), float(result.mean[1])
      (True, 0.0)
    """
    where = "permutation_importance"
    check_int(where, "repeats", repeats)
    if batch_size is not None:
        check_int(where, "batch_size", batch_size)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(f"{where}: data must be a pair (x, y), got {type(data).__name__}")
    x, y = jnp.asarray(data[0]), data[1]
    if x.ndim != 2:
        raise ValueError(f"{where}: x must be tabular, (n, features), got shape {x.shape}; "
                         "for images or sequences use occlusion or integrated_gradients")
    function, greater, name = resolve_metric(metric, greater_is_better, where)
    names, masks = _groups(groups, x.shape[1], where)
    base, shuffled = _function(model, function, masks.tobytes(), masks.shape, repeats, output,
                               batch_size)(params, state, x, y, key)
    base, shuffled = float(base), np.asarray(shuffled, np.float64)
    drops = base - shuffled if greater else shuffled - base
    return Importances(names, drops.mean(axis=1), drops.std(axis=1), drops, base, name)
