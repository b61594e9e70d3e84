"""The evaluation passes on data in memory: the forward pass over all of ``x`` in batches
(scanned, or one jitted batch at a time where the model prefers it) and the loss and
metrics on it, compiled once per configuration; used by ``fit``'s validation,
``evaluate`` and ``predict``."""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn.caching import memoize
from fnn.train.data.splits import num_examples
from fnn.train.epoch.dispatch import prefers_unrolled
from fnn.train.step.precision import inference_forward


def _split(x: Any, batch_size: int) -> tuple[Any, Any, int]:
    n = num_examples(x)
    full = n // batch_size
    head = jax.tree.map(lambda a: a[:full * batch_size].reshape(
        (full, batch_size) + a.shape[1:]), x)
    tail = jax.tree.map(lambda a: a[full * batch_size:], x)
    return head, tail, n - full * batch_size


def concat(parts: list) -> Any:
    """Outputs of consecutive batches joined along the example axis."""
    return jax.tree.map(lambda *a: jnp.concatenate(a, axis=0), *parts)


def _scanned_forward(model, policy, batch_size, params, state, x):
    apply = functools.partial(inference_forward, model, policy, params, state)
    if batch_size is None or batch_size >= num_examples(x):
        return apply(x)
    head, tail, rest = _split(x, batch_size)
    outs = jax.lax.map(apply, head)
    outs = jax.tree.map(lambda o: o.reshape((-1,) + o.shape[2:]), outs)
    return concat([outs, apply(tail)]) if rest else outs


@memoize
def forward_function(model: Any, policy: Any, batch_size: int | None) -> Callable:
    """``forward(params, state, x) -> outputs`` for the whole of ``x``."""
    if batch_size is None or not prefers_unrolled(model):
        return jax.jit(functools.partial(_scanned_forward, model, policy, batch_size))
    one = jax.jit(functools.partial(inference_forward, model, policy))

    def forward(params, state, x):
        n = num_examples(x)
        parts = [one(params, state, jax.tree.map(lambda a: a[i:i + batch_size], x))
                 for i in range(0, n, batch_size)]
        return parts[0] if len(parts) == 1 else concat(parts)

    return forward


def score(loss_fn: Callable | None, metric_fns: tuple, out: Any, y: Any) -> dict:
    """The loss (unless ``None``) and each metric on ``out`` against ``y``."""
    result = {} if loss_fn is None else {"loss": loss_fn(out, y)}
    result.update({name: fn(out, y) for name, fn in metric_fns})
    return result


@memoize
def evaluation_function(model: Any, loss_fn: Callable | None, metric_fns: tuple,
                        batch_size: int | None, policy: Any) -> Callable:
    """``evaluate(params, state, x, y) -> {name: device scalar}`` (no host transfer)."""
    scores = functools.partial(score, loss_fn, metric_fns)
    if batch_size is None or not prefers_unrolled(model):
        return jax.jit(lambda params, state, x, y: scores(
            _scanned_forward(model, policy, batch_size, params, state, x), y))
    forward = forward_function(model, policy, batch_size)
    scores = jax.jit(scores)
    return lambda params, state, x, y: scores(forward(params, state, x), y)
