"""Attributions from the input gradient: saliency, gradient x input, SmoothGrad.

All three differentiate the explained score ``S_i`` of each example
(`fnn.explain.targets`) with respect to its input. Examples do not
interact in evaluation mode, so one gradient of ``sum_i S_i`` gives every
example's own gradient in one backward pass.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn.caching import memoize
from fnn.explain import rows as rows_module
from fnn.explain import targets
from fnn.validation import check_int, check_number


def score_gradient(model: Any, spec: targets.Target, params: Any, state: Any, x: Any,
                   classes: jax.Array | None, valid: jax.Array | None = None) -> Any:
    """``dS_i / dx_i`` for every row of ``x`` (rows where ``valid`` is false count zero);
    ``classes=None`` explains each row's predicted class, read from the same forward pass
    (`jax.vjp`: one forward and one backward)."""
    out, pullback = jax.vjp(lambda v: targets.forward(model, params, state, v, spec), x)
    if classes is None:
        classes = targets.predicted(out, spec)

    def total(o):
        s = targets.scores(o, classes, spec)
        return jnp.sum(s if valid is None else jnp.where(valid, s, 0.0))
    return pullback(jax.grad(total)(out))[0]


def explained_classes(model: Any, spec: targets.Target, params: Any, state: Any, x: Any,
                      classes: Any) -> jax.Array:
    """``classes``, or the predicted class of each example when ``None``."""
    if classes is not None:
        return classes
    return targets.predicted(targets.forward(model, params, state, x, spec), spec)


@memoize
def _gradient_function(model: Any, spec: targets.Target, times_input: bool, absolute: bool):
    def run(params, state, x, classes):
        k = classes.shape[1] if classes is not None and classes.ndim == 2 else None
        x, classes = targets.repeat_for_targets(x, classes, k)
        g = score_gradient(model, spec, params, state, x, classes)
        if times_input:
            g = jax.tree.map(jnp.multiply, x, g)
        if absolute:
            g = jax.tree.map(jnp.abs, g)
        return targets.split_targets(g, k)
    return jax.jit(run)


def _prepared(where, model, params, state, x, target, output):
    targets.check_float_inputs(x, where)
    spec, classes, _ = targets.resolve(model, params, state, x, target, output, where)
    return spec, classes


def saliency(model: Any, params: Any, state: Any, x: Any, *, target: Any = None,
             output: Any = None, abs: bool = False) -> Any:
    """The input gradient of the explained score (Simonyan et al. 2014).

    Equation: ``a_i = dS_i / dx_i`` (``|dS_i / dx_i|`` with ``abs=True``,
    the saliency map of the paper), where ``S_i`` is the score of example
    ``i`` for its target (`fnn.explain.targets`).

    Use it for a first, cheap look (one backward pass); it says how the score
    changes for a small change of each input, not how much each input
    contributes (see `gradient_x_input`, `integrated_gradients`).

    Args:
      model: an fnn layer or a function ``apply(params, x)``.
      params, state: the model's parameters and state.
      x: a batch (an array, or a tuple/dict of floating arrays for several inputs).
      target: the class to explain: ``None`` (the predicted one), an int, an
        int array ``(batch,)`` or ``(batch, k)``, or a function ``outputs -> (batch,)``.
      output: the output to explain, for a model with several.
      abs: return ``|gradient|``.

    Returns:
      Attributions shaped like ``x`` (``(batch, k, ...)`` for ``k`` targets per example).

    Raises:
      ValueError / TypeError: see `fnn.explain.targets.resolve`; integer inputs.

    Examples:
      >>> model = fnn.Dense(1)
      >>> params = {"w": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}
      >>> fnn.explain.saliency(model, params, {}, jnp.array([[1.0, 3.0]])).tolist()
      [[2.0, -1.0]]
    """
    spec, classes = _prepared("saliency", model, params, state, x, target, output)
    return _gradient_function(model, spec, False, bool(abs))(params, state, x, classes)


def gradient_x_input(model: Any, params: Any, state: Any, x: Any, *, target: Any = None,
                     output: Any = None) -> Any:
    """The input times its gradient (Shrikumar et al. 2016).

    Equation: ``a_ij = x_ij dS_i / dx_ij``. For a linear model ``S = w . x + b``
    this is ``w_j x_j``, each feature's exact share of ``S - b``.

    Args:
      model, params, state, x, target, output: as for `saliency`.

    Returns:
      Attributions shaped like ``x``.

    Examples:
      >>> model = fnn.Dense(1)
      >>> params = {"w": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}
      >>> fnn.explain.gradient_x_input(model, params, {}, jnp.array([[1.0, 3.0]])).tolist()
      [[2.0, -3.0]]
    """
    spec, classes = _prepared("gradient_x_input", model, params, state, x, target, output)
    return _gradient_function(model, spec, True, False)(params, state, x, classes)


_SMOOTHGRAD_KINDS = ("mean", "square", "variance")


@memoize
def _smoothgrad_function(model: Any, spec: targets.Target, samples: int, kind: str,
                         batch_size: int | None):
    def run(params, state, x, classes, key, noise):
        k = classes.shape[1] if classes is not None and classes.ndim == 2 else None
        x, classes = targets.repeat_for_targets(x, classes, k)
        classes = explained_classes(model, spec, params, state, x, classes)
        n = targets.batch_size_of(x, "smoothgrad")
        leaves, treedef = jax.tree.flatten(x)
        sigma = [noise * (jnp.max(a.reshape(n, -1), axis=1) - jnp.min(a.reshape(n, -1), axis=1))
                 for a in leaves]

        def add(total, index, valid):
            i = index % n
            keys = jax.vmap(lambda r: jax.random.fold_in(key, r))(index)
            noisy = [a[i] + s[i].reshape((-1,) + (1,) * (a.ndim - 1)) * jax.vmap(
                lambda kk, shape=a.shape[1:], dtype=a.dtype: jax.random.normal(
                    jax.random.fold_in(kk, j), shape, dtype))(keys)
                for j, (a, s) in enumerate(zip(leaves, sigma))]
            g = jax.tree.leaves(score_gradient(model, spec, params, state,
                                               jax.tree.unflatten(treedef, noisy),
                                               classes[i], valid))
            weight = jnp.where(valid, 1.0 / samples, 0.0)
            first, second = total
            first = [rows_module.scatter_add(t, i, v, weight) for t, v in zip(first, g)]
            second = [rows_module.scatter_add(t, i, v * v, weight) for t, v in zip(second, g)]
            return first, second

        zeros = [jnp.zeros_like(a) for a in leaves]
        mean, square = rows_module.over_rows(add, (zeros, zeros), samples * n, batch_size,
                                             "smoothgrad")
        result = {"mean": mean, "square": square,
                  "variance": [s - m * m for m, s in zip(mean, square)]}[kind]
        return targets.split_targets(jax.tree.unflatten(treedef, result), k)
    return jax.jit(run)


def smoothgrad(model: Any, params: Any, state: Any, x: Any, *, key: jax.Array,
               target: Any = None, samples: int = 25, noise: float = 0.15, kind: str = "mean",
               batch_size: int | None = None, output: Any = None) -> Any:
    """The input gradient averaged over noisy copies of the input (Smilkov et al. 2017).

    Equations, over ``m = samples`` copies ``x_i + e_k`` with
    ``e_k ~ N(0, sigma_i^2)`` and ``sigma_i = noise (max x_i - min x_i)``
    (the noise level as a fraction of the example's range, 10-20% in the paper),
    ``g_k = dS_i / dx`` at ``x_i + e_k``:

    - ``kind="mean"``: ``(1/m) sum_k g_k`` (SmoothGrad);
    - ``kind="square"``: ``(1/m) sum_k g_k^2`` (SmoothGrad-squared);
    - ``kind="variance"``: ``(1/m) sum_k g_k^2 - ((1/m) sum_k g_k)^2`` (VarGrad).

    The class explained is the one of the clean input (``target=None``: its
    prediction). Each noisy copy's noise is keyed by ``(key, row)``, so the
    result does not depend on ``batch_size``.

    Use it where saliency maps look noisy (images): averaging removes the
    sharp local changes of the gradient.

    Args:
      model, params, state, x, target, output: as for `saliency`.
      key: the PRNG key of the noise.
      samples: the number of noisy copies ``m``.
      noise: ``sigma`` as a fraction of each example's range (``>= 0``).
      kind: ``"mean"``, ``"square"`` or ``"variance"``.
      batch_size: copies evaluated per model call (``None``: all ``m * batch`` at once).

    Returns:
      Attributions shaped like ``x``.

    Examples:
      >>> model = fnn.Dense(1)
      >>> params = {"w": jnp.array([[2.0], [-1.0]]), "b": jnp.array([0.5])}
      >>> fnn.explain.smoothgrad(model, params, {}, jnp.array([[1.0, 3.0]]),
      ...                        key=jax.random.key(0), samples=4).tolist()
      [[2.0, -1.0]]
    """
    where = "smoothgrad"
    check_int(where, "samples", samples)
    check_number(where, "noise", noise, "nonnegative")
    if kind not in _SMOOTHGRAD_KINDS:
        raise ValueError(f"{where}: kind must be one of {_SMOOTHGRAD_KINDS}, got {kind!r}")
    check_int(where, "batch_size", batch_size, allow_none=True)
    spec, classes = _prepared(where, model, params, state, x, target, output)
    return _smoothgrad_function(model, spec, samples, kind, batch_size)(
        params, state, x, classes, key, jnp.float32(noise))
