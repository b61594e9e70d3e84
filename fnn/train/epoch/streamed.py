"""An epoch over streamed batches (`fnn.train.data.streaming`), equal to the in-memory epoch.

The in-memory epoch (`fnn.train.epoch`) gathers each step's batch on the
device from the permutation. A streamed epoch computes the same permutation
(from the key alone), copies it to the host, and a background thread
(`fnn.train.data.prefetch.Prefetcher`) gathers the same rows from the
memory-mapped arrays, ``steps_per_dispatch`` steps at a time
(about `fnn.train.data.streaming.STREAM_BLOCK_BYTES` for a model that scans),
and puts them on the device ahead of use. Each block of steps runs the same
step (`fnn.train.epoch.step_loop`) with the same keys
``fold_in(steps_key, i)``, and the per-step metrics are reduced in the same
groups as in memory (all the full steps, then the last partial one; per chunk
for a chunked model), so on CPU the parameters, optimizer state and history
equal the in-memory fit's bit for bit.

For an iterable of batches the order is the iterable's; the keys and the
reduction are the same as for the in-memory epoch over those batches.
"""

from __future__ import annotations

import collections
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fnn.caching import memoize
from fnn.train.epoch.in_memory import (EpochConfig, accumulate, gather_batch, begin, init_accumulator,
                             jitted_finish, epoch_order, finish, plan, run_steps,
                             skipped_count, step_loop)
from fnn.train.data.prefetch import Prefetcher
from fnn.train.data.batch_sources import Block
from fnn.train.data.streaming import steps_per_block


def block_plan(full: int, size: int, remainder: int, per_block: int) -> list[tuple[int, int, int]]:
    """``[(start, count, size), ...]``: the full steps in blocks of ``per_block``, then the
    partial last step on its own.

    Examples:
      >>> fnn.train.epoch.streamed.block_plan(5, 8, 3, 2)
      [(0, 2, 8), (2, 2, 8), (4, 1, 8), (5, 1, 3)]
    """
    blocks = [(start, min(per_block, full - start), size) for start in range(0, full, per_block)]
    return blocks + ([(full, 1, remainder)] if remainder else [])


def per_block(ecfg: EpochConfig, structs: Any) -> int:
    """Steps per streamed block: the model's own ``steps_per_dispatch`` when it runs in
    chunks, else about `fnn.train.data.streaming.STREAM_BLOCK_BYTES` of batches
    (``structs``: one batch's)."""
    if ecfg.chunk:
        return ecfg.chunk
    return steps_per_block(sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
                               for a in jax.tree.leaves(structs)))


@memoize
def _jitted_begin(ecfg: EpochConfig, n: int, structs: Any) -> Callable:
    def begin_epoch(params, state, key, epoch):
        return begin(ecfg, n, params, state, structs, key, epoch)[1:]
    return jax.jit(begin_epoch)


@memoize
def _jitted_order(ecfg: EpochConfig, n: int) -> Callable:
    """The epoch's order of the examples (`fnn.train.epoch.epoch_order`), from
    ``fit``'s key alone (so each process has it without the others)."""
    return jax.jit(lambda key, epoch: epoch_order(ecfg, n, key, epoch)[0])


@memoize
def _jitted_block(ecfg: EpochConfig, count: int, size: int, names: tuple,
                  donate: bool) -> Callable:
    # Step i of the block trains on its i-th contiguous slice (the host gathered the rows
    # in the epoch's order), with the in-memory step and key; a chunked epoch reduces the
    # metrics in each chunk's program, as in memory; a scanned one returns them stacked,
    # reduced at the end (`_jitted_end`). The numbers agree to the bit (tested).
    unroll = ecfg.mode == "unroll"

    def run(carry, block, steps_key, start):
        if ecfg.mesh is not None:       # (count, size, ...), split over "data": flatten
            block = jax.tree.map(lambda a: a.reshape((count * size,) + a.shape[2:]), block)

        def batch_of(i):
            return i, gather_batch(block, None, i - start, size, size)
        if ecfg.chunk is not None:
            carry, stacked = run_steps(ecfg, carry, None, None, steps_key, start, count, size,
                                       unroll, batch_of), None
        else:
            carry, stacked = step_loop(ecfg, carry, batch_of,
                                       start + jnp.arange(count, dtype=jnp.int32),
                                       lambda j: start + j, steps_key, count, names, unroll)
        # a scalar ready only when the block's last step is done (never donated: the host
        # waits on it to keep at most `prefetch` blocks queued on the device)
        done = jax.tree.leaves(carry[0])[0].ravel()[0] if jax.tree.leaves(carry[0]) else start
        return carry, stacked, done
    return jax.jit(run, donate_argnums=(0,) if donate else ())


@memoize
def _jitted_end(cfg: Any, groups: tuple, skipping: bool) -> Callable:
    """The epoch's metrics from its blocks' stacked per-step values, reduced in ``groups``
    ``((start, size), ...)``, in one program shaped like the in-memory epoch's tail (the
    sums start from constant zeros there too: XLA then simplifies both alike)."""
    def end(carry, stacked):
        *carry, counts = carry
        acc = init_accumulator(cfg, counts)
        for (start, size), parts in zip(groups, stacked):
            acc = accumulate(acc, jax.tree.map(lambda *a: jnp.concatenate(a), *parts),
                              start, size, skipping)
        return finish(cfg, (*carry, acc))
    return jax.jit(end)


def _putter(mesh: Any) -> Callable[[Block], Block]:
    """Put a block on the device; over a mesh, a block ``(count, size, ...)`` whose batches
    are split over ``"data"``, each process giving its own columns
    (`fnn.train.data.batch_sources.ArraySource.blocks` with ``part``)."""
    if mesh is None:
        return lambda block: Block(block.start, block.count, block.size,
                                   jax.device_put(block.data))
    sharding = NamedSharding(mesh, PartitionSpec(None, "data"))

    def put(block: Block) -> Block:
        if jax.process_count() == 1:
            data = jax.device_put(block.data, sharding)
        else:
            data = jax.tree.map(lambda a: jax.make_array_from_process_local_data(
                sharding, a, (block.count, block.size) + a.shape[2:]), block.data)
        return Block(block.start, block.count, block.size, data)
    return put


def streamed_epoch(ecfg: EpochConfig, donate: bool, source: Any, prefetch: int, params: Any,
                   state: Any, opt_state: Any, structs: Any, key: Any, epoch: int,
                   on_steps: Callable | None = None) -> tuple:
    """One epoch over ``source`` (an `fnn.train.data.batch_sources.ArraySource` or
    ``IterableSource``): ``(params, state, opt_state, metrics)`` as
    `fnn.train.epoch.epoch_function` returns them.

    Args:
      ecfg: the epoch configuration (for an iterable: its first batch's size and
        ``shuffle=False``).
      donate: donate the carry between blocks.
      source: where the batches come from.
      prefetch: blocks read ahead.
      params, state, opt_state: the training state.
      structs: one batch's ``(x, y)`` structs (for the summed metrics' shapes).
      key, epoch: ``fit``'s key and the epoch index.
      on_steps: ``on_steps(steps_done, steps_per_epoch or None)`` after each block (the
        progress bar's step count; at most ``prefetch`` blocks run behind it).
    """
    n = source.examples
    if n is None:                       # an iterable: no order of ours
        n = ecfg.batch_size
    steps_key, acc = _jitted_begin(ecfg, n, structs)(params, state, key, epoch)
    if source.examples is not None:
        full, size, remainder = plan(n, ecfg.batch_size, ecfg.drop_remainder)
        order = (np.asarray(_jitted_order(ecfg, n)(key, epoch)) if ecfg.shuffle
                 and ecfg.batch_size is not None else None)
        part = None if ecfg.mesh is None else (jax.process_index(), jax.process_count())
        blocks = source.blocks(epoch, order, block_plan(full, size, remainder,
                                                         per_block(ecfg, structs)), part)
        total_steps = full + (remainder > 0)
    else:
        blocks = source.blocks(epoch, per_block(ecfg, structs))
        total_steps = source.steps
    names = tuple(acc["sums"])
    skipping = skipped_count(opt_state) is not None
    chunked = ecfg.chunk is not None
    carry = (params, state, opt_state, acc if chunked else acc["counts"])
    groups: list = []                   # [start, size, [stacked, ...]] reduced together
    programs: dict = {}                 # (count, size) -> compiled block
    queued: collections.deque = collections.deque()
    with Prefetcher(blocks, _putter(ecfg.mesh), prefetch) as ready:
        for block in ready:
            shape = (block.count, block.size)
            if shape not in programs:
                programs[shape] = _jitted_block(ecfg, *shape, names, donate)
            carry, stacked, done = programs[shape](carry, block.data, steps_key,
                                                   np.int32(block.start))
            # Dispatch is asynchronous: without a bound, a host that reads faster than the
            # device computes would queue every block (and its batches) on the device.
            queued.append(done)
            if len(queued) > prefetch:
                jax.block_until_ready(queued.popleft())
            if on_steps is not None:
                on_steps(block.start + block.count, total_steps)
            if chunked:
                continue
            if groups and groups[-1][1] == block.size:
                groups[-1][2].append(stacked)
            else:
                groups.append([block.start, block.size, [stacked]])
    if chunked:
        return jitted_finish(ecfg.train)(carry)
    groups_key = tuple((start, size) for start, size, _ in groups)
    return _jitted_end(ecfg.train, groups_key, skipping)(carry, [g[2] for g in groups])
