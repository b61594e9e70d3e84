"""How many members train at once: a generous estimate of one member's memory in a vmapped
training program against the memory a program may use (``fit_ensemble`` and ``sweep``
chunk their members by it)."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from fnn.caching import memoize


def available_memory() -> int:
    """Bytes a program may use: the device's limit where JAX reports one (GPU/TPU), else
    half of the host's physical memory (CPU)."""
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2 ** 30


@memoize
def member_bytes(model: Any, optimizer: Any, x: Any, batch_size: int | None) -> int:
    """A generous estimate of one member's memory in a vmapped training program: its
    parameters four times (values, gradients, two optimizer moments) plus the optimizer
    state, and three times every layer's output for one batch (forward values kept for
    the backward pass, their gradients, temporaries)."""
    from fnn.summary import summary_rows        # (summary imports layers, as train does)
    n = len(jax.tree.leaves(x)[0])
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct((batch_size or n,) + a.shape[1:],
                                                        a.dtype), x)
    rows = summary_rows(model, batch)
    params = sum(r.bytes for r in rows)
    opt_state = jax.eval_shape(optimizer.init, jax.eval_shape(
        lambda k: model.init(k, batch)[0], jax.random.key(0)))
    opt_bytes = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(opt_state))
    activations = sum(int(np.prod(shape)) * 4 for r in rows
                      for shape in jax.tree.leaves(r.output_shape,
                                                   is_leaf=lambda s: isinstance(s, tuple)))
    return 4 * params + opt_bytes + 3 * activations


def auto_chunk_size(model: Any, optimizer: Any, x: Any, batch_size: int | None,
                    members: int) -> int:
    """Members per chunk so that a chunk's estimate (`member_bytes`) stays within
    half of `available_memory` (the shared data and XLA's workspace need the rest)."""
    per_member = max(1, member_bytes(model, optimizer, x, batch_size))
    return int(max(1, min(members, available_memory() // 2 // per_member)))
