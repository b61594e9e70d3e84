"""Data parallel training with JAX's own sharding: ``fit(..., mesh=...)``.

With a `jax.sharding.Mesh` that has a ``"data"`` axis, ``fit`` puts
the data, the parameters, the model state and the optimizer state on every
device of the mesh (replicated, ``PartitionSpec()``), and inside the compiled
step constrains each batch to be split along its example axis over
``"data"`` (``NamedSharding(mesh, PartitionSpec("data"))``). Plain
`jax.jit` then partitions the step (GSPMD): each device computes the
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

Parameters may be split too: ``fit(..., mesh=, param_sharding={"*/w": PartitionSpec(None,
"model")})`` on a mesh with a ``"model"`` axis places each matching parameter, and every
optimizer-state leaf that belongs to it (Adam's moments of that parameter), with that
``PartitionSpec``; the others stay replicated. The compiler then partitions the matmuls as well
(tensor parallelism); the numbers are still those of one device.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from fnn.optim.transforms.masking import path_matches
from fnn.optim.validation import path_to_str
from fnn.train.data.processes import check_same_data, global_examples  # noqa: F401


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


def replicate(mesh: Any, tree: Any, specs: Any = None) -> Any:
    """``tree`` on the devices of ``mesh``: every leaf replicated (``PartitionSpec()``), or
    placed by ``specs`` (a pytree of ``PartitionSpec`` with ``tree``'s structure).

    With several processes, an array already on this process's device cannot be moved to
    another host's devices; each process builds the global array from its own host copy
    (every process holds the same values: the same data and the same initialisation).
    """
    if specs is None:
        specs = jax.tree.map(lambda _: PartitionSpec(), tree)
    shardings = jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                             is_leaf=lambda s: isinstance(s, PartitionSpec))
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)

    def one(leaf, sharding):
        host = np.asarray(jax.device_get(leaf))
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
    return jax.tree.map(one, tree, shardings)


def param_specs(mesh: Any, param_sharding: Any, params: Any) -> Any:
    """One ``PartitionSpec`` per parameter leaf (a pytree like ``params``).

    Args:
      mesh: the (checked) mesh; every axis a spec names must be one of its axes.
      param_sharding: ``None`` (all replicated), a dict ``{path pattern: PartitionSpec}``
        (``fnmatch`` patterns on paths such as ``"0/w"``, as `fnn.optim.freeze`
        takes them; the first matching pattern wins; each must match some parameter), or a
        function ``fn(path) -> PartitionSpec | None``.
      params: the parameters (or their shape structs).

    Returns:
      a pytree of ``PartitionSpec`` with ``params``' structure.

    Raises:
      ValueError: a pattern that matches no parameter, an axis the mesh lacks, a spec
        longer than the parameter's rank, or a dimension the axis size does not divide.
    """
    replicated = jax.tree.map(lambda _: PartitionSpec(), params)
    if param_sharding is None:
        return replicated
    with_paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    paths = [path_to_str(p) for p, _ in with_paths]
    if isinstance(param_sharding, Mapping):
        rules = list(param_sharding.items())
        for pattern, spec in rules:
            if not isinstance(pattern, str) or not isinstance(spec, PartitionSpec):
                raise TypeError(f"fit: param_sharding maps path patterns (str) to "
                                f"jax.sharding.PartitionSpec; got {pattern!r}: {spec!r}")
            if not any(path_matches(path, pattern) for path in paths):
                raise ValueError(f"fit: param_sharding pattern {pattern!r} matches no "
                                 f"parameter; the parameter paths are: {', '.join(paths)}")

        def choose(path: str) -> Any:
            return next((spec for pattern, spec in rules if path_matches(path, pattern)), None)
    elif callable(param_sharding):
        choose: Callable = param_sharding
    else:
        raise TypeError(f"fit: param_sharding must be a dict {{path pattern: PartitionSpec}} "
                        f"or a function path -> PartitionSpec, got {param_sharding!r:.80}")
    specs = []
    for path, (_, leaf) in zip(paths, with_paths):
        spec = choose(path)
        spec = PartitionSpec() if spec is None else spec
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"fit: param_sharding gives {spec!r} for {path!r}; expected a "
                            f"jax.sharding.PartitionSpec")
        _check_spec(mesh, path, spec, np.shape(leaf))
        specs.append(spec)
    return treedef.unflatten(specs)


def _check_spec(mesh: Any, path: str, spec: PartitionSpec, shape: tuple) -> None:
    if len(spec) > len(shape):
        raise ValueError(f"fit: param_sharding gives {spec} for {path!r}, which has shape "
                         f"{shape}: more entries than dimensions")
    for dim, entry in enumerate(spec):
        axes = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        size = 1
        for axis in axes:
            if axis not in mesh.axis_names:
                raise ValueError(f"fit: param_sharding gives {spec} for {path!r}, but the mesh "
                                 f"has no axis {axis!r} (its axes: {mesh.axis_names})")
            size *= mesh.shape[axis]
        if shape[dim] % size:
            raise ValueError(f"fit: param_sharding splits dimension {dim} of {path!r} (shape "
                             f"{shape}) over {size} devices ({spec}); the size must be "
                             f"divisible by it")


def opt_state_specs(opt_state: Any, params: Any, specs: Any) -> Any:
    """Specs for the optimizer state: a leaf whose path ends with a parameter's path and
    has its shape (Adam's ``mu/0/w`` for parameter ``0/w``; the longest such path wins)
    gets that parameter's spec; every other leaf (counts, scalars) is replicated."""
    by_path = {path_to_str(p): (np.shape(leaf), spec) for (p, leaf), spec in zip(
        jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(
            specs, is_leaf=lambda s: isinstance(s, PartitionSpec)))}

    def one(key_path: tuple, leaf: Any) -> PartitionSpec:
        parts = path_to_str(key_path).split("/")
        for start in range(len(parts)):          # the longest suffix first
            found = by_path.get("/".join(parts[start:]))
            if found is not None and found[0] == np.shape(leaf):
                return found[1]
        return PartitionSpec()
    return jax.tree_util.tree_map_with_path(one, opt_state)


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


def put_data(mesh: Any, tree: Any) -> Any:
    """Training or validation data on the mesh: replicated in one process; with several,
    each process's shard becomes its part of a global array split over the examples."""
    if jax.process_count() == 1:
        return replicate(mesh, tree)
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), tree)
