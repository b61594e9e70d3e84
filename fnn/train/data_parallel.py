"""Data parallel training with JAX's own sharding: ``fit(..., mesh=...)``.

With a :class:`jax.sharding.Mesh` that has a ``"data"`` axis, ``fit`` puts
the data, the parameters, the model state and the optimizer state on every
device of the mesh (replicated, ``PartitionSpec()``), and inside the compiled
step constrains each batch to be split along its example axis over
``"data"`` (``NamedSharding(mesh, PartitionSpec("data"))``). Plain
:func:`jax.jit` then partitions the step (GSPMD): each device computes the
forward and backward pass of its slice of the batch, and the gradient sums,
the loss mean and BatchNorm's batch statistics become all-reduces over the
devices. The program means what it means on one device, so the results are
those of one device up to the order of floating-point additions. No
``pmap``, no ``axis_name`` needed.

Several processes (hosts): call ``jax.distributed.initialize(...)`` in each
first; ``jax.make_mesh`` then spans every process's devices, and each process
passes ``fit`` its own shard of the data, all shards of one size: the global
dataset is the shards concatenated in process order
(``jax.make_array_from_process_local_data``), so two processes holding the
two halves train exactly like one process holding all of it
(``docs/many_models.md`` says how to launch it).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec


def check_mesh(where: str, mesh: Any, batch_size: int, remainder: int) -> None:
    """``ValueError`` unless ``mesh`` has a ``"data"`` axis that divides every batch."""
    if not isinstance(mesh, jax.sharding.Mesh):
        raise ValueError(f"{where}: mesh must be a jax.sharding.Mesh such as "
                         f"jax.make_mesh((jax.device_count(),), ('data',)), got {mesh!r:.80}")
    if "data" not in mesh.axis_names:
        raise ValueError(f"{where}: the mesh needs an axis named 'data' to split the batch "
                         f"over; it has axes {mesh.axis_names}")
    devices = mesh.shape["data"]
    for what, size in (("batch_size", batch_size), ("the last partial batch", remainder)):
        if size and size % devices:
            hint = (" (or pass drop_remainder=True)" if what != "batch_size" else "")
            raise ValueError(f"{where}: {what} ({size}) must be divisible by the {devices} "
                             f"devices of the mesh's 'data' axis, so that each device gets "
                             f"the same number of examples{hint}")


def replicate(mesh: Any, tree: Any) -> Any:
    """``tree`` on every device of ``mesh`` (``PartitionSpec()``).

    With several processes, an array already on this process's device cannot be moved to
    another host's devices; each process builds the global array from its own host copy
    (every process holds the same values: the same data and the same initialisation).
    """
    sharding = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(leaf):
        host = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
    return jax.tree.map(one, tree)


def auto_axes(mesh: Any) -> Any:
    """``mesh`` with every axis of type ``Auto`` (the compiler places the collectives).

    ``jax.make_mesh`` makes ``Explicit`` axes by default in recent JAX, where arrays
    carry their sharding in their type; fit's step is written for one device and lets
    GSPMD partition it, which needs ``Auto`` axes.
    """
    auto = (jax.sharding.AxisType.Auto,) * len(mesh.axis_names)
    if tuple(getattr(mesh, "axis_types", auto)) == auto:
        return mesh
    return jax.sharding.Mesh(mesh.devices, mesh.axis_names, axis_types=auto)


def place(where: str, mesh: Any, params: Any, state: Any, data: Any) -> tuple[Any, Any, Any]:
    """For ``evaluate`` / ``predict``: parameters and state replicated over ``mesh``, the
    data split along its example axis over ``"data"`` when the device count divides it
    (else replicated, so any number of examples works); the jitted forward pass is then
    partitioned by the compiler, with the numbers of one device."""
    check_mesh(where, mesh, 0, 0)
    mesh = auto_axes(mesh)
    n = len(jax.tree.leaves(data)[0])
    spec = PartitionSpec("data") if n % mesh.shape["data"] == 0 else PartitionSpec()
    if jax.process_count() == 1:
        data = jax.device_put(data, NamedSharding(mesh, spec))
    else:
        data = replicate(mesh, data)
    params, state = replicate(mesh, (params, state))
    return params, state, data


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


def put_data(mesh: Any, tree: Any) -> Any:
    """Training or validation data on the mesh: replicated in one process; with several,
    each process's shard becomes its part of a global array split over the examples."""
    if jax.process_count() == 1:
        return replicate(mesh, tree)
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), tree)
