"""Integrated gradients (Sundararajan et al. 2017), with five quadrature rules.

Equation: for input ``x``, baseline ``b`` and score ``S``,

    IG_j(x) = (x_j - b_j) int_0^1 dS/dx_j (b + a (x - b)) da
            ~ (x_j - b_j) sum_k w_k dS/dx_j (b + a_k (x - b))

with the points ``a_k`` and weights ``w_k`` of ``method`` (``m = steps``):

- ``"riemann_left"``: ``a_k = k/m``, ``k = 0..m-1``, ``w_k = 1/m``;
- ``"riemann_right"``: ``a_k = k/m``, ``k = 1..m``, ``w_k = 1/m``;
- ``"riemann_middle"``: ``a_k = (k + 1/2)/m``, ``w_k = 1/m``;
- ``"riemann_trapezoid"``: ``a_k = k/(m-1)``, ``k = 0..m-1``, ``w_k = 1/(m-1)``,
  halved at both ends (needs ``m >= 2``);
- ``"gausslegendre"``: the ``m`` Gauss-Legendre nodes mapped to ``[0, 1]``
  (exact for polynomials of degree ``2m - 1`` along the path; the default,
  as in Captum).

Completeness: ``sum_j IG_j = S(x) - S(b)`` exactly for the integral; the
*delta* ``sum_j IG_j - (S(x) - S(b))`` per example measures the quadrature
error and shrinks as ``steps`` grows (``return_delta=True`` reports it).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.caching import memoize
from fnn.explain import rows as rows_module
from fnn.explain import targets
from fnn.explain.gradients import explained_classes, score_gradient
from fnn.validation import check_int

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
           "gausslegendre")


def path_points(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, weights)`` of a quadrature rule on ``[0, 1]`` (float64 numpy arrays).

    Examples:
      >>> a, w = fnn.explain.integrated.path_points("riemann_trapezoid", 3)
      >>> a.tolist(), w.tolist()
      ([0.0, 0.5, 1.0], [0.25, 0.5, 0.25])
    """
    if method not in METHODS:
        raise ValueError(f"integrated_gradients: method must be one of {METHODS}, got "
                         f"{method!r}")
    k = np.arange(steps, dtype=np.float64)
    if method == "riemann_left":
        return k / steps, np.full(steps, 1.0 / steps)
    if method == "riemann_right":
        return (k + 1) / steps, np.full(steps, 1.0 / steps)
    if method == "riemann_middle":
        return (k + 0.5) / steps, np.full(steps, 1.0 / steps)
    if method == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("integrated_gradients: method 'riemann_trapezoid' needs steps >= 2 "
                             f"(both ends of the path), got {steps}")
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return k / (steps - 1), weights
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1) / 2, weights / 2


def _baseline(x: Any, baseline: Any, where: str) -> Any:
    """``baseline`` as a tree of arrays shaped like ``x`` (zeros for ``None``; a number, or
    one example's shape, broadcast over the batch)."""
    if baseline is None:
        return jax.tree.map(jnp.zeros_like, x)
    if not isinstance(baseline, (dict, tuple, list)) or not isinstance(x, (dict, tuple, list)):
        baseline = jax.tree.map(lambda _: baseline, x)
    try:
        pairs = jax.tree.map(lambda a, b: (a, b), x, baseline)
    except ValueError:
        raise ValueError(f"{where}: baseline must have the structure of x") from None

    def one(pair):
        a, b = pair
        b = jnp.asarray(b, jnp.result_type(a))
        shape = jnp.shape(a)
        if b.shape not in ((), shape, shape[1:]):
            raise ValueError(f"{where}: baseline of shape {b.shape} for an input of shape "
                             f"{shape}: give a number, one example's shape {shape[1:]} or "
                             f"the batch's shape {shape}")
        return jnp.broadcast_to(b, shape)
    return jax.tree.map(one, pairs, is_leaf=lambda v: isinstance(v, tuple))


@memoize
def _function(model: Any, spec: targets.Target, method: str, steps: int,
              batch_size: int | None):
    alphas, weights = (a.astype(np.float32) for a in path_points(method, steps))

    def run(params, state, x, baseline, classes):
        k = classes.shape[1] if classes is not None and classes.ndim == 2 else None
        x, classes = targets.repeat_for_targets(x, classes, k)
        if k is not None:
            baseline = jax.tree.map(lambda a: jnp.repeat(a, k, axis=0), baseline)
        classes = explained_classes(model, spec, params, state, x, classes)
        n = targets.batch_size_of(x, "integrated_gradients")

        def add(total, index, valid):
            step, i = index // n, index % n
            alpha = jnp.asarray(alphas)[step]
            point = jax.tree.map(
                lambda a, b: b[i] + alpha.reshape((-1,) + (1,) * (a.ndim - 1)) * (a[i] - b[i]),
                x, baseline)
            g = score_gradient(model, spec, params, state, point, classes[i], valid)
            weight = jnp.where(valid, jnp.asarray(weights)[step], 0.0)
            return jax.tree.map(lambda t, v: rows_module.scatter_add(t, i, v, weight), total, g)

        mean_gradient = rows_module.over_rows(add, jax.tree.map(jnp.zeros_like, x),
                                              steps * n, batch_size, "integrated_gradients")
        attributions = jax.tree.map(lambda a, b, g: (a - b) * g, x, baseline, mean_gradient)
        score = lambda v: targets.scores(targets.forward(model, params, state, v, spec),
                                         classes, spec)
        total = sum(jnp.sum(a.reshape(n, -1), axis=1) for a in jax.tree.leaves(attributions))
        delta = total - (score(x) - score(baseline))
        return targets.split_targets(attributions, k), targets.split_targets(delta, k)
    return jax.jit(run)


def integrated_gradients(model: Any, params: Any, state: Any, x: Any, *, target: Any = None,
                         baseline: Any = None, steps: int = 50, method: str = "gausslegendre",
                         batch_size: int | None = None, return_delta: bool = False,
                         output: Any = None) -> Any:
    """Integrated gradients: each input's share of ``S(x) - S(baseline)``.

    See `fnn.explain.integrated` for the equation and the
    methods. Use it when the attributions must add up (completeness): the
    attributions of an example sum to its score minus the baseline's score,
    up to the delta. The baseline should mean "no signal" (zeros for
    normalised images, a blurred image, the training mean for tabular data).

    Args:
      model, params, state, x, target, output: as for `fnn.explain.saliency`.
      baseline: ``None`` (zeros), a number, one example's shape, or the batch's
        shape (a tree like ``x`` for several inputs).
      steps: the number of points ``m`` on the path (``>= 1``).
      method: the quadrature rule (see the module docstring).
      batch_size: path points evaluated per model call, like Captum's
        ``internal_batch_size`` (``None``: all ``steps * batch`` at once);
        the result does not depend on it.
      return_delta: also return the completeness error per example.

    Returns:
      Attributions shaped like ``x``; with ``return_delta``, ``(attributions,
      delta)`` where ``delta`` is ``(batch,)`` (``(batch, k)`` for ``k``
      targets per example).

    Raises:
      ValueError: ``steps < 1``, an unknown method, a baseline of the wrong
        shape, a target out of range (see `fnn.explain.targets.resolve`).

    Examples:
      >>> model = fnn.Dense(1)
      >>> params = {"w": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}
      >>> ig, delta = fnn.explain.integrated_gradients(
      ...     model, params, {}, jnp.array([[1.0, 3.0]]), steps=4, return_delta=True)
      >>> ig.tolist(), abs(float(delta[0])) < 1e-6
      ([[2.0, -3.0]], True)
    """
    where = "integrated_gradients"
    check_int(where, "steps", steps)
    path_points(method, steps)
    check_int(where, "batch_size", batch_size, allow_none=True)
    targets.check_float_inputs(x, where)
    spec, classes, _ = targets.resolve(model, params, state, x, target, output, where)
    base = _baseline(x, baseline, where)
    attributions, delta = _function(model, spec, method, steps, batch_size)(
        params, state, x, base, classes)
    return (attributions, delta) if return_delta else attributions
