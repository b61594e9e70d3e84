"""``fit``'s placement stage: where the run's arrays live. The device mesh is checked
against the batch, the data goes on the device once (split over the mesh's ``"data"``
axis), or is left to a streamed source; the parameters, model state and optimizer state
become owned, committed device arrays (replicated, or split as ``param_sharding`` asks).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn.train.data import checks, processes, streaming
from fnn.train.epoch import data_parallel, dispatch
from fnn.train.epoch.in_memory import plan
from fnn.train.step.train_config import donate_buffers


class Devices(NamedTuple):
    """How a fit's steps run: the checked mesh (``None``: one device), the dispatch mode
    and steps per compiled call (`fnn.train.epoch.dispatch`)."""

    mesh: Any
    mode: str
    chunk: int | None


class Placed(NamedTuple):
    """The run's arrays where they live.

    Attributes:
      data: the training ``(x, y)`` on the device, or one batch's structs when streamed.
      source: the streamed source (``None`` for data in memory).
      params, state, opt_state: owned device arrays (safe to donate when ``donate``).
      specs: the parameters' ``PartitionSpec`` tree over the mesh (``None`` without one).
      donate: whether the epoch donates its inputs' buffers.
    """

    data: Any
    source: Any
    params: Any
    state: Any
    opt_state: Any
    specs: Any
    donate: bool


def check_devices(where: str, model: Any, mesh: Any, param_sharding: Any, batch_size: Any,
                  n: int, drop_remainder: bool, strategy: Any,
                  steps_per_dispatch: Any) -> Devices:
    """The dispatch for ``model`` and the mesh checked against the batch (before anything
    is computed)."""
    mode, chunk = dispatch.resolve(model, strategy, steps_per_dispatch)
    if mesh is not None:
        _, _, remainder = plan(n, batch_size, drop_remainder)
        data_parallel.check_mesh(where, mesh, batch_size or n, remainder)
        mesh = data_parallel.auto_axes(mesh)
    elif param_sharding is not None:
        raise ValueError(f"{where}: param_sharding needs a mesh= to place the parameters on")
    return Devices(mesh, mode, chunk)


def place(where: str, inputs: Any, y: Any, check_values: Any, weighted: bool, params: Any,
          state: Any, opt_state: Any, mesh: Any, param_sharding: Any) -> Placed:
    """Put the run on its devices.

    Args:
      where: the calling function, named in messages.
      inputs: the opened inputs (`fnn.train.data.inputs.Inputs`).
      y: the training targets (``(labels, weights)`` when ``weighted``).
      check_values: the per-block value checks of streamed data.
      weighted: whether ``y`` carries example weights.
      params, state, opt_state: the starting values.
      mesh: the checked mesh (`check_devices`), or ``None``.
      param_sharding: ``fit``'s ``param_sharding``.

    Returns:
      The `Placed` arrays.
    """
    x, batch_size, source = inputs.x, inputs.batching.batch_size, None
    if inputs.kind == "memory":
        data = (jax.device_put((x, y)) if mesh is None
                else data_parallel.put_data(mesh, (x, y)))
    else:
        if mesh is not None:                # (an iterable refuses a mesh)
            processes.check_same_data(where, (x, y))
        n = inputs.n
        data = checks.struct(jax.tree.map(lambda a: a[:min(batch_size or n, n)], (x, y)))
        source = streaming.training_source(where, inputs.source, (x, y), check_values,
                                           weighted)
    specs = None
    if mesh is not None:
        specs = data_parallel.param_specs(mesh, param_sharding, params)
        params = data_parallel.replicate(mesh, params, specs)
        opt_state = data_parallel.replicate(mesh, opt_state, data_parallel.opt_state_specs(
            opt_state, params, specs))
        state = data_parallel.replicate(mesh, state)
    # Donation saves accelerator memory; on CPU it measured no faster, and it costs a copy
    # of everything donated (the caller's arrays must survive), so CPU does not donate.
    donate = donate_buffers()
    params, state, opt_state = own_arrays((params, state, opt_state), copy=donate)
    return Placed(data, source, params, state, opt_state, specs, donate)


def own_arrays(tree: Any, copy: bool) -> Any:
    """``tree``'s leaves as strongly typed, committed device arrays, in new buffers when ``copy``.

    A compiled function then sees the same kind of input in every epoch, so it
    never compiles twice: its outputs are strongly typed and committed to their
    device, so a weakly typed leaf (a Python number, ``jnp.asarray(0.1)``)
    becomes a new array of its dtype, and a numpy array or an uncommitted
    device array (what an init or ``jax.device_put(x)`` without a device
    gives) is committed where it lies (no copy). ``copy=True`` copies every
    other leaf too, so the result can be donated while the caller's arrays
    stay valid (and a buffer appearing twice in ``tree`` becomes two).
    """
    def one(a):
        if getattr(a, "weak_type", False) or not hasattr(a, "dtype"):
            a = jnp.asarray(a)
            a = jnp.asarray(a, dtype=a.dtype)  # a new, strongly typed array
        elif copy:
            a = jax.device_put(a, may_alias=False)
        elif not isinstance(a, jax.Array):
            a = jax.device_put(a)
        return a if a.committed else jax.device_put(a, a.sharding)
    return jax.tree.map(one, tree)
