"""``evaluate``, ``predict`` and fit's validation over streamed data (`fnn.train.data.streaming`).

The batches are read one at a time (a background thread reads ahead) in the
data's order; nothing is shuffled.

- ``evaluate`` sums, over the batches, ``n_b`` times each batch's loss and mean
  metrics (accuracy) and the statistics of the metrics an epoch sums (precision,
  recall, F1, AUC: `fnn.metrics.epoch_statistics`), and divides by the
  number of examples at the end: the whole set's values, equal to the in-memory
  ``evaluate`` up to float rounding (the loss is a mean of batch means there is
  one mean over all examples).
- ``predict`` copies each batch's outputs to the host as soon as they are ready
  and returns numpy arrays assembled there, so outputs larger than the device's
  memory work.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fnn.caching import memoize
from fnn.metrics import epoch_statistics
from fnn.train.epoch.in_memory import plan
from fnn.train.step.gradients import batch_metrics, metric_results
from fnn.train.step.precision import inference_forward
from fnn.train.data.prefetch import Prefetcher
from fnn.train.epoch.streamed import block_plan


def _blocks(source: Any, epoch: int, batch_size: int | None) -> Any:
    """One batch per block, in the data's order."""
    if source.examples is None:
        return source.blocks(epoch, 1)
    full, size, remainder = plan(source.examples, batch_size, False)
    return source.blocks(epoch, None, block_plan(full, size, remainder, 1))


def _putter(mesh: Any) -> Callable:
    """Put a batch on the device, or replicated over ``mesh`` (each process read all of it)."""
    if mesh is None:
        return lambda block: jax.device_put(block.data)
    sharding = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return lambda block: jax.device_put(block.data, sharding)
    return lambda block: jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, a), block.data)


@memoize
def _jitted_scores(cfg: Any) -> Callable:
    def scores(params, state, x, y):
        out = inference_forward(cfg.model, cfg.policy, params, state, x)
        size = jnp.float32(len(jax.tree.leaves(x)[0]))
        values = batch_metrics(cfg, out, y)
        sums = {name: values[name] if epoch_statistics(fn) is not None else size * values[name]
                for name, fn in cfg.metric_fns}
        return {"loss": size * cfg.loss_fn(out, y), **sums}, size
    return jax.jit(scores)


@memoize
def _jitted_add() -> Callable:
    return jax.jit(lambda a, b: jax.tree.map(jnp.add, a, b))


@memoize
def _jitted_result(cfg: Any) -> Callable:
    def result(sums, count):
        means = {name: v / count for name, v in sums.items()}
        summed = {name: sums[name] for name, fn in cfg.metric_fns
                  if epoch_statistics(fn) is not None}
        return {**means, **metric_results(cfg, summed)}
    return jax.jit(result)


def streamed_scores(cfg: Any, source: Any, batch_size: int | None, params: Any, state: Any,
                    epoch: int = 0, prefetch: int = 2, bar: Any = None, mesh: Any = None) -> dict:
    """``{"loss": ..., <metric>: ...}`` (device scalars) over every batch of ``source``.

    Args:
      cfg: a `fnn.train.step.train_config.TrainConfig` (model, ``loss_fn`` or ``None``,
        metrics, precision policy).
      source: an ``ArraySource`` or ``IterableSource`` of ``(x, y)``.
      batch_size: rows per batch of an ``ArraySource``.
      params, state: the model's.
      epoch: which pass (an iterable is read afresh for each).
      prefetch: batches read ahead.
      bar: a progress bar (``update(examples)``), or ``None``.
      mesh: ``fit``'s mesh: each batch is replicated over it.
    """
    total = None
    scores, add = _jitted_scores(cfg), _jitted_add()
    with Prefetcher(_blocks(source, epoch, batch_size), _putter(mesh), prefetch) as ready:
        for x, y in ready:
            part = scores(params, state, x, y)
            total = part if total is None else add(total, part)
            if bar is not None:
                bar.update(len(jax.tree.leaves(x)[0]))
    return _jitted_result(cfg)(*total)


@memoize
def _jitted_forward(model: Any, policy: Any) -> Callable:
    return jax.jit(functools.partial(inference_forward, model, policy))


def streamed_predict(model: Any, policy: Any, source: Any, batch_size: int | None, params: Any,
                     state: Any, prefetch: int = 2, bar: Any = None) -> Any:
    """The outputs on every batch of ``source``, as numpy arrays assembled on the host
    (each batch's outputs are copied back while the next batch runs)."""
    forward = _jitted_forward(model, policy)
    parts, pending = [], None
    with Prefetcher(_blocks(source, 0, batch_size), _putter(None), prefetch) as ready:
        for (x,) in ready:
            out = forward(params, state, x)
            if pending is not None:
                parts.append(jax.device_get(pending))
            pending = out
            if bar is not None:
                bar.update(len(jax.tree.leaves(x)[0]))
    parts.append(jax.device_get(pending))
    return jax.tree.map(lambda *a: np.concatenate(a), *parts) if len(parts) > 1 else parts[0]

