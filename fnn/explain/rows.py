"""Many model evaluations per example, in chunks: the engine under the sampling methods.

Integrated gradients evaluates the gradient at ``m`` points per example,
SmoothGrad at ``m`` noisy copies, occlusion at ``m`` occluded copies. With
``n`` examples that is ``m n`` *rows*, numbered ``r = k n + i`` (sample ``k``
of example ``i``). `over_rows` runs them ``batch_size`` rows at a time
(Captum's ``internal_batch_size``): only one chunk's activations are alive,
chunks run one after another inside one compiled ``lax.scan``, and each
chunk adds its rows' contributions into per-example sums. ``batch_size=None``
runs all rows as one batch. A row's value never depends on the chunk it is
in (its input is a function of ``(k, i)`` alone; a row's random noise is
keyed by ``r``), so chunked results equal unchunked ones up to the order of
the additions.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from fnn.validation import check_int


def chunking(rows: int, batch_size: int | None, where: str) -> tuple[int, int]:
    """``(chunk, count)``: rows per model call and the number of calls."""
    if batch_size is not None:
        check_int(where, "batch_size", batch_size)
    chunk = rows if batch_size is None else min(int(batch_size), rows)
    return chunk, -(-rows // chunk)


def over_rows(add: Callable, init: Any, rows: int, batch_size: int | None,
              where: str) -> Any:
    """Fold ``add(total, row_indices, valid)`` over the chunks of rows, from ``init``.

    Args:
      add: ``(total, rows, valid) -> total`` with a chunk's contributions
        added (``rows``: int32 ``(chunk,)``, padded with row 0 where
        ``valid`` is false; a padded row must add nothing).
      init: the zero sums.
      rows: the number of rows.
      batch_size: rows per chunk (``None``: one chunk).
      where: the calling function, named in messages.

    Returns:
      The sums over all rows.
    """
    chunk, count = chunking(rows, batch_size, where)
    if count == 1:
        return add(init, jnp.arange(chunk, dtype=jnp.int32), jnp.ones(chunk, bool))

    def body(total, start):
        index = start + jnp.arange(chunk, dtype=jnp.int32)
        valid = index < rows
        return add(total, jnp.where(valid, index, 0), valid), None

    total, _ = jax.lax.scan(body, init, jnp.arange(count, dtype=jnp.int32) * chunk)
    return total


def take(x: Any, index: jax.Array) -> Any:
    """Rows ``index`` of every array of ``x``."""
    return jax.tree.map(lambda a: jnp.take(a, index, axis=0), x)


def scatter_add(total: jax.Array, index: jax.Array, values: jax.Array,
                weight: jax.Array) -> jax.Array:
    """``total[index[r]] += weight[r] * values[r]`` for every row ``r``."""
    weight = weight.reshape(weight.shape + (1,) * (values.ndim - 1)).astype(values.dtype)
    return total.at[index].add(weight * values)
