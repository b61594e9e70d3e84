"""A whole epoch of training steps on the device, with metrics accumulated on the device.

``epoch(params, state, opt_state, (x, y), key)`` runs one pass over the data
(already on the device) and returns the new ``(params, state, opt_state)``
and the epoch's metrics, without any transfer to the host in between:

- the key: ``shuffle_key, steps_key = jax.random.split(key)``; the order is
  ``perm = fnn.train.data.shuffle.shuffled_indices(shuffle_key, n)`` (an O(n)
  keyed bijection, no sort); step ``i`` trains on ``x[perm[i*b : (i+1)*b]]``
  with the key ``jax.random.fold_in(steps_key, i)`` (see
  `fnn.train.step` for how the step uses it);
- ``shuffle=False``: the same, in the data's own order (``perm = arange(n)``,
  read as contiguous slices);
- ``batch_size=None`` (batch gradient descent): one step on all the data in
  its original order (no shuffle);
- the last partial batch: when ``b`` does not divide ``n``, the ``n mod b``
  examples left over form a last, smaller step of their own (compiled once
  for that shape), so every example is seen once per epoch and its loss is
  the mean over its real examples; ``drop_remainder=True`` skips it instead
  (the examples left out change every epoch with the shuffle);
- batches are gathered on the device from the permutation, one step at a time;
- metrics: ``loss`` and every metric that is a mean over examples (accuracy)
  are the example-weighted mean over the epoch's steps of the per-batch
  values (the mean over the epoch's examples); precision, recall, F1 and AUC
  are computed from statistics summed over the epoch's steps (confusion
  counts, score histograms: `fnn.metrics.epoch_statistics`), so they
  are the values on all the epoch's predictions; ``learning_rate`` is the one
  of the epoch's last update; ``nonfinite_step`` is the index of the first
  step whose loss was NaN/inf (``-1``: none); ``params_finite`` whether the
  parameters are free of NaN/inf at the end of the epoch (one check per
  epoch: a ReLU maps NaN to 0, so NaN parameters can hide behind a finite
  loss); with an optimizer that skips
  non-finite steps (``fnn.optim.skip_nonfinite``, `fnn.train.loss_scaled`)
  the means are over the finite steps and ``skipped`` is the total number of
  skipped steps so far.

The steps run as one ``lax.scan`` per epoch, in unrolled chunks, or one by one
(`fnn.train.epoch.dispatch`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from fnn.caching import memoize
from fnn.optim.base import find_states
from fnn.optim.hyperparams import current_learning_rate
from fnn.optim.transforms.nonfinite import SkipNonfiniteState, all_finite
from fnn.train.epoch import dispatch
from fnn.train.step.train_config import TrainConfig, build_config, donate_buffers
from fnn.train.data.splits import num_examples
from fnn.train.data.shuffle import shuffled_indices
from fnn.metrics import epoch_statistics
from fnn.train.step.gradients import metric_results, summed_names
from fnn.train.step import monitor
from fnn.train.step.train_step import train_step


@dataclasses.dataclass(frozen=True)
class EpochConfig:
    """Static description of an epoch (hashable cache key)."""

    train: TrainConfig
    batch_size: int | None
    drop_remainder: bool = False
    mode: str = "scan"
    chunk: int | None = None
    shuffle: bool = True
    mesh: Any = None        # data parallel: each batch is split over the mesh's "data" axis


def plan(n: int, batch_size: int | None, drop_remainder: bool) -> tuple[int, int, int]:
    """``(full_steps, step_size, remainder)`` of an epoch over ``n`` examples.

    Examples:
      >>> fnn.train.epoch.plan(10, 4, False), fnn.train.epoch.plan(10, 4, True)
      ((2, 4, 2), (2, 4, 0))
      >>> fnn.train.epoch.plan(10, None, False)
      (1, 10, 0)
    """
    if batch_size is None:
        return 1, n, 0
    full, remainder = divmod(n, batch_size)
    return full, batch_size, 0 if drop_remainder else remainder


def skipped_count(opt_state: Any) -> jax.Array | None:
    """Total steps skipped so far by skipping wrappers in ``opt_state`` (``None``: no wrapper).

    Counts every `fnn.optim.SkipNonfiniteState`, including the one
    inside `fnn.train.loss_scaled`.
    """
    states = find_states(opt_state, SkipNonfiniteState)
    if not states:
        return None
    return functools.reduce(jnp.add, [s.skipped for s in states])


def init_accumulator(cfg: TrainConfig, counts: dict) -> dict:
    """The epoch's running sums at zero: one per averaged number, the summed metrics'
    statistics ``counts``, the examples counted, the first non-finite step (``-1``)."""
    summed = set(counts)
    zero = jnp.zeros([], jnp.float32)
    return {"sums": {name: zero for name in cfg.logged_names() if name not in summed},
            "counts": counts, "count": zero, "first_nonfinite": jnp.full([], -1, jnp.int32)}


def _zero_counts(cfg: TrainConfig, params: Any, state: Any, data: Any, size: int) -> dict:
    """Zeros shaped like the statistics of the metrics an epoch sums (precision, recall,
    F1, AUC: `fnn.metrics.epoch_statistics`), from one batch's abstract outputs."""
    names = summed_names(cfg)
    if not names and cfg.monitor is None:
        return {}
    x, y = jax.tree.map(lambda a: jax.ShapeDtypeStruct((size,) + a.shape[1:], a.dtype), data)
    counts = {}
    if names:
        out = jax.eval_shape(lambda p, s, v: cfg.model.apply(p, s, v, train=False)[0],
                             params, state, x)
        stats = dict(cfg.metric_fns)
        counts = {name: jnp.zeros(jax.eval_shape(epoch_statistics(stats[name]).stats, out,
                                                 y).shape, jnp.float32) for name in names}
    if cfg.monitor is not None:     # the monitor's sums (fnn.train.step.monitor)
        counts["monitor"] = monitor.zeros(cfg, params, state, x)
    return counts


def accumulate(acc: dict, stacked: dict, start: Any, size: int, skipping: bool) -> dict:
    """Add the per-step values ``stacked[name]`` (shape ``(steps,)``) of steps ``start...``
    (``acc["counts"]``, summed in the loop, passes through)."""
    losses = stacked["loss"]
    finite = jnp.isfinite(losses)
    index = start + jnp.arange(losses.shape[0], dtype=jnp.int32)
    first_here = jnp.min(jnp.where(finite, jnp.iinfo(jnp.int32).max, index))
    first = jnp.where((acc["first_nonfinite"] < 0) & ~jnp.all(finite), first_here,
                      acc["first_nonfinite"])
    if skipping:
        weight = jnp.where(finite, jnp.float32(size), 0.0)
        sums = {k: s + jnp.sum(weight * jnp.where(finite, stacked[k], 0.0))
                for k, s in acc["sums"].items()}
        count = acc["count"] + jnp.sum(weight)
    else:
        sums = {k: s + size * jnp.sum(stacked[k]) for k, s in acc["sums"].items()}
        count = acc["count"] + size * losses.shape[0]
    return {"sums": sums, "counts": acc["counts"], "count": count,
            "first_nonfinite": first.astype(jnp.int32)}


def gather_batch(data: Any, perm: Any, index: Any, batch_size: int | None, size: int) -> Any:
    """Step ``index``'s batch of ``size`` examples: rows ``perm[index*b : index*b+size]`` of
    ``data`` (contiguous rows when ``perm`` is ``None``; all of it for ``batch_size=None``)."""
    if batch_size is None:
        return data
    if perm is None:  # shuffle=False: contiguous slices
        return jax.tree.map(
            lambda a: jax.lax.dynamic_slice_in_dim(a, index * batch_size, size), data)
    idx = jax.lax.dynamic_slice_in_dim(perm, index * batch_size, size)
    return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)


def step_loop(ecfg: EpochConfig, carry: tuple, batch_of: Callable, xs: Any, xs_at: Callable,
              steps_key: Any, count: int, names: tuple, unroll: bool) -> tuple:
    """``count`` training steps on ``carry = (params, state, opt_state, counts)``.

    Step ``j`` trains on ``(i, batch) = batch_of(x_j)``, where ``x_j`` is ``xs``'s ``j``-th
    row (``xs_at(j)`` when the steps are written out) and ``i`` is the step's index in the
    epoch (its key is ``fold_in(steps_key, i)``). The steps are scanned, or written out
    one after another when ``unroll`` (or ``count == 1``). Returns the new carry and the
    metrics ``names`` stacked over the steps (as a hand-written scan returns its losses);
    the statistics of the summed metrics (``counts``: confusion counts, score histograms)
    are added up in the carry instead.
    """
    skipping = skipped_count(carry[2]) is not None

    def one(carry, x):
        *carry, counts = carry
        i, batch = batch_of(x)
        if ecfg.mesh is not None:     # each device computes its slice of the batch
            batch = jax.lax.with_sharding_constraint(
                batch, NamedSharding(ecfg.mesh, PartitionSpec("data")))
        params, state, opt_state, metrics = train_step(
            ecfg.train, *carry, batch, jax.random.fold_in(steps_key, i), i)
        keep = jnp.isfinite(metrics["loss"]) if skipping else True   # a skipped step: none
        counts = jax.tree.map(lambda c, m: c + jnp.where(keep, m, 0.0), counts,
                              {k: metrics[k] for k in counts})
        return (params, state, opt_state, counts), {k: metrics[k] for k in names}

    if unroll or count == 1:
        outputs = []
        for j in range(count):
            carry, out = one(carry, xs_at(j))
            outputs.append(out)
        return carry, jax.tree.map(lambda *v: jnp.stack(v), *outputs)
    return jax.lax.scan(one, carry, xs)


def run_steps(ecfg: EpochConfig, carry: tuple, data: Any, perm: Any, steps_key: Any,
              start: Any, count: int, size: int, unroll: bool,
              batch_of: Callable | None = None) -> tuple:
    """Steps ``start .. start+count-1`` of batch size ``size`` on ``carry``, their batches
    gathered on the device from ``data`` (`step_loop`), or ``batch_of(i) -> (i,
    batch)`` (a streamed block's).

    ``carry`` is ``(params, state, opt_state, acc)``; the stacked metrics are reduced
    into ``acc`` after the loop, so the loop body holds only the step.
    """
    params, state, opt_state, acc = carry
    skipping = skipped_count(opt_state) is not None
    carry, stacked = step_loop(
        ecfg, (params, state, opt_state, acc["counts"]),
        batch_of or (lambda i: (i, gather_batch(data, perm, i, ecfg.batch_size, size))),
        start + jnp.arange(count, dtype=jnp.int32), lambda j: start + j, steps_key, count,
        tuple(acc["sums"]), unroll)
    *carry, counts = carry
    return (*carry, accumulate({**acc, "counts": counts}, stacked, start, size, skipping))


def epoch_key(key: Any, epoch: Any = None) -> Any:
    """The key of an epoch: ``key`` itself, or ``fold_in(split(key)[1], epoch)`` as in ``fit``."""
    return key if epoch is None else jax.random.fold_in(jax.random.split(key)[1], epoch)


def epoch_order(ecfg: EpochConfig, n: int, key: Any, epoch: Any = None) -> tuple:
    """``(perm, steps_key)`` of an epoch: the order of its ``n`` examples (``None``: their
    own order) and the key its steps fold their index into."""
    shuffle_key, steps_key = jax.random.split(epoch_key(key, epoch))
    perm = (shuffled_indices(shuffle_key, n) if ecfg.batch_size is not None and ecfg.shuffle
            else None)
    return perm, steps_key


def begin(ecfg: EpochConfig, n: int, params: Any, state: Any, data: Any, key: Any,
           epoch: Any = None) -> tuple:
    """``(perm, steps_key, accumulator)`` at the start of an epoch over ``n`` examples."""
    perm, steps_key = epoch_order(ecfg, n, key, epoch)
    size = n if ecfg.batch_size is None else min(ecfg.batch_size, n)
    return perm, steps_key, init_accumulator(ecfg.train, _zero_counts(ecfg.train, params, state,
                                                                data, size))


def finish(cfg: TrainConfig, carry: tuple) -> tuple:
    """``(params, state, opt_state, metrics)`` from the final carry of an epoch: the
    averaged numbers divided by the examples, the summed metrics computed from their
    epoch's statistics (`fnn.train.step.gradients.metric_results`)."""
    params, state, opt_state, acc = carry
    metrics = {k: s / acc["count"] for k, s in acc["sums"].items()}
    metrics.update(metric_results(cfg, acc["counts"]))
    if "monitor" in metrics:
        metrics.update(monitor.results(metrics.pop("monitor"), params))
    metrics["nonfinite_step"] = acc["first_nonfinite"]
    metrics["params_finite"] = all_finite(params)
    learning_rate = current_learning_rate(opt_state)
    if learning_rate is not None:
        metrics["learning_rate"] = learning_rate
    skipped = skipped_count(opt_state)
    if skipped is not None:
        metrics["skipped"] = skipped
    return params, state, opt_state, metrics


def whole_epoch(ecfg: EpochConfig, params, state, opt_state, data, key, epoch=None):
    """One epoch over ``data`` on the device, traceable (jitted by `epoch_function`,
    vmapped over members by `fnn.train.many.ensemble`)."""
    n = num_examples(data)
    full, size, remainder = plan(n, ecfg.batch_size, ecfg.drop_remainder)
    perm, steps_key, acc = begin(ecfg, n, params, state, data, key, epoch)
    carry = run_steps(ecfg, (params, state, opt_state, acc), data, perm, steps_key, 0, full,
                      size, unroll=ecfg.mode == "unroll")
    if remainder:
        carry = run_steps(ecfg, carry, data, perm, steps_key, full, 1, remainder, unroll=True)
    return finish(ecfg.train, carry)


@memoize
def _jitted_begin(ecfg: EpochConfig, n: int) -> Callable:
    return jax.jit(functools.partial(begin, ecfg, n))


@memoize
def _jitted_chunk(ecfg: EpochConfig, count: int, size: int, donate: bool) -> Callable:
    def chunk(carry, data, perm, steps_key, start):
        return run_steps(ecfg, carry, data, perm, steps_key, start, count, size,
                         unroll=ecfg.mode == "unroll")
    return jax.jit(chunk, donate_argnums=(0,) if donate else ())


@memoize
def jitted_finish(cfg: TrainConfig) -> Callable:
    """`finish`, compiled once per configuration."""
    return jax.jit(functools.partial(finish, cfg))


def _chunked_epoch(ecfg: EpochConfig, donate: bool, params, state, opt_state, data, key,
                   epoch=None):
    n = num_examples(data)
    full, size, remainder = plan(n, ecfg.batch_size, ecfg.drop_remainder)
    begin = _jitted_begin(ecfg, n)
    perm, steps_key, acc = (begin(params, state, data, key) if epoch is None
                            else begin(params, state, data, key, epoch))
    carry = (params, state, opt_state, acc)
    run = {count: _jitted_chunk(ecfg, count, size, donate)  # looked up once per epoch
           for count in {min(ecfg.chunk, full - start) for start in range(0, full, ecfg.chunk)}}
    for start in range(0, full, ecfg.chunk):
        carry = run[min(ecfg.chunk, full - start)](carry, data, perm, steps_key, start)
    if remainder:
        carry = _jitted_chunk(ecfg, 1, remainder, donate)(carry, data, perm, steps_key, full)
    return jitted_finish(ecfg.train)(carry)


@memoize
def epoch_function(ecfg: EpochConfig, donate: bool) -> Callable:
    """The epoch function for ``ecfg``: one jitted call, or a loop of jitted chunks.

    Called as ``f(params, state, opt_state, data, key)`` with the epoch's key, or
    ``f(params, state, opt_state, data, key, epoch)`` with ``fit``'s key and the
    epoch index (the epoch key is then derived inside the compiled call).
    """
    if ecfg.chunk is None:
        return jax.jit(functools.partial(whole_epoch, ecfg),
                       donate_argnums=(0, 1, 2) if donate else ())
    return functools.partial(_chunked_epoch, ecfg, donate)


def make_epoch(model: Any, loss: Any, optimizer: Any, *, batch_size: int | None,
               metrics: Sequence[Any] = (), loss_weights: Any = None,
               augment: Callable | None = None,
               precision: Any = None, accumulation_steps: int = 1,
               drop_remainder: bool = False, shuffle: bool = True, strategy: str | None = None,
               steps_per_dispatch: int | None = None, donate: bool | None = None) -> Callable:
    """Build ``epoch(params, state, opt_state, (x, y), key)``: one pass over the data.

    Args:
      model, loss, optimizer, metrics, loss_weights, augment, precision, accumulation_steps:
        as for `fnn.train.make_train_step`.
      batch_size: examples per step; ``None`` for batch gradient descent.
      drop_remainder: skip the last partial batch instead of training on it.
      shuffle: a fresh order each epoch (``False``: the data's own order).
      strategy: ``None`` (chosen per model and backend), ``"scan"``,
        ``"unroll"`` or ``"step"`` (see `fnn.train.epoch.dispatch`).
      steps_per_dispatch: steps per compiled call (default: the whole epoch
        for ``"scan"``, 8 for ``"unroll"``).
      donate: donate ``params``, ``state``, ``opt_state``; ``None``: on GPU/TPU,
        not on CPU (continue with the returned arrays: the ones passed in are
        deleted; see `fnn.train.make_train_step`).

    Returns:
      ``epoch(params, state, opt_state, (x, y), key) -> (params, state,
      opt_state, metrics)``; ``metrics`` maps ``"loss"``, each metric,
      ``"nonfinite_step"``, ``"params_finite"``, ``"learning_rate"`` (and
      ``"skipped"``) to device
      scalars (see the module docstring). ``fnn.fit`` calls it with
      ``key = jax.random.fold_in(loop_key, epoch_index)``.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> opt = fnn.optim.adam(0.01)
      >>> x = jax.random.normal(jax.random.key(0), (50, 3)); y = x[:, :1] ** 2
      >>> params, state = model.init(jax.random.key(1), x)
      >>> opt_state = opt.init(params)
      >>> epoch = fnn.train.make_epoch(model, "mse", opt, batch_size=16)
      >>> for e in range(3):
      ...     params, state, opt_state, m = epoch(params, state, opt_state, (x, y),
      ...                                         jax.random.fold_in(jax.random.key(2), e))
      >>> sorted(m), int(m["nonfinite_step"])
      (['learning_rate', 'loss', 'nonfinite_step', 'params_finite'], -1)
    """
    cfg = build_config(model, loss, optimizer, metrics=metrics, loss_weights=loss_weights,
                       augment=augment,
                       precision=precision, accumulation_steps=accumulation_steps,
                       where="make_epoch")
    mode, chunk = dispatch.resolve(cfg.model, strategy, steps_per_dispatch)
    ecfg = EpochConfig(cfg, batch_size, bool(drop_remainder), mode, chunk, bool(shuffle))
    return epoch_function(ecfg, donate_buffers() if donate is None else bool(donate))
