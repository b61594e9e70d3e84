"""Data over several processes: each passes its own shard of the data in memory (the
sizes must agree), or every process passes the same streamed file (checked)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def global_examples(where: str, local: int) -> int:
    """The number of examples over all processes (each passes its own shard of ``local``
    examples; the shards must be of one size)."""
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils
    sizes = np.asarray(multihost_utils.process_allgather(np.int64(local)))
    if len(set(sizes.tolist())) != 1:
        raise ValueError(f"{where}: with several processes each passes its own shard of the "
                         f"data, all of one size; the processes have {sizes.tolist()} "
                         f"examples")
    return int(sizes.sum())


def check_same_data(where: str, data: Any) -> None:
    """With several processes, ``ValueError`` unless every process passed the same streamed
    data (the whole data set, each reading its own rows of each batch): the number of
    examples and the first and last rows are compared across the processes."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils
    import hashlib
    leaves = jax.tree.leaves(data)
    digest = hashlib.sha256()
    for a in leaves:
        digest.update(str((a.shape, str(a.dtype))).encode())
        digest.update(np.ascontiguousarray(a[:1]).tobytes())
        digest.update(np.ascontiguousarray(a[-1:]).tobytes())
    mine = np.frombuffer(digest.digest()[:8], np.int64)
    every = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1)
    if len(set(every.tolist())) != 1:
        raise ValueError(f"{where}: streamed data is the whole data set in every process (each "
                         f"reads only its own rows of each batch), but the processes passed "
                         f"different data (sizes or first/last rows differ); pass every "
                         f"process the same file, or load each shard and pass it in memory")
