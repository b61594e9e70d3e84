"""``fnn.fit_ensemble``: N models trained with N keys in one vmapped program.

Member ``i`` is ``fit(model, loss, optimizer, data, key=keys[i], ...)``: the
same initialisation (``model.init(split(keys[i])[0], x)``), the same shuffle
order and dropout keys per epoch, the same early stopping, computed together.
The epoch function is `fnn.train.epoch`'s whole-epoch ``lax.scan``
under `jax.vmap` over the members (the data is shared, not copied), so
the N members cost one compilation and, on a small model, far less than N
separate fits: per step, one dispatch and batched matmuls instead of N.

Early stopping acts per member: a member that stops keeps its parameters
(they are no longer updated: the vmapped step still computes them, and a
select keeps the old values) and, with ``restore_best``, returns its best
epoch's parameters; the program ends when every member has stopped.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core
import numpy as np

from fnn.caching import memoize
from fnn.layers.function import as_layer
from fnn.train.step import checks
from fnn.train.step.train_config import build_config
from fnn.train.loop.early_stopping import EarlyStopping
from fnn.train.epoch.in_memory import EpochConfig, whole_epoch, plan
from fnn.train.evaluation import evaluation_function
from fnn.train.fit import FitResult
from fnn.train.loop.history import check_monitor
from fnn.caching import shape_key
from fnn.train.loop.initial_values import initial_structs, jitted_init
from fnn.train.loop.progress import EpochBar, wants_bar
from fnn.train.many.members import (Saving, chunk_saving, make_saving,  # noqa: F401
                                    parallel_groups, stack_members, train_members)
from fnn.train.many.memory import (auto_chunk_size, available_memory,  # noqa: F401
                                   member_bytes)
from fnn.validation import check_int


def check_keys(where: str, keys: Any) -> jax.Array:
    """``keys`` as a typed key array of shape ``(N,)``; ``ValueError`` otherwise."""
    if isinstance(keys, (list, tuple)):
        keys = jnp.stack(list(keys)) if keys else keys
    if isinstance(keys, np.ndarray):
        keys = jnp.asarray(keys)
    if not isinstance(keys, jax.Array):
        raise ValueError(f"{where}: keys must be an array of PRNG keys such as "
                         f"jax.random.split(jax.random.key(0), 8), got {type(keys).__name__}")
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        if keys.ndim != 1 or keys.shape[0] < 1:
            raise ValueError(f"{where}: keys must have shape (members,), one key per member, "
                             f"got shape {keys.shape}")
        return keys
    if keys.dtype == jnp.uint32 and keys.ndim == 2 and keys.shape[1] == 2 and keys.shape[0]:
        return jax.random.wrap_key_data(keys)
    raise ValueError(f"{where}: keys must be PRNG keys of shape (members,) (e.g. "
                     f"jax.random.split(jax.random.key(0), 8)), got dtype {keys.dtype}, shape "
                     f"{keys.shape}")


@memoize
def _ensemble_epoch(ecfg: EpochConfig, data_axis: int | None = None) -> Callable:
    """One epoch of every member: ``(params, state, opt_state, data, keys, epoch)``; the
    data is shared (``data_axis=None``) or has a leading member axis (``0``)."""
    epoch = functools.partial(whole_epoch, ecfg)
    return jax.jit(jax.vmap(epoch, in_axes=(0, 0, 0, data_axis, 0, None)))


@memoize
def _jitted_member_init(model: Any, x_struct: Any) -> Callable:
    """fit's own ``model.init`` (`fnn.train.loop.initial_values.jitted_init`), vmapped over
    the members' keys; keyed on the model and the input's shapes only."""
    return jax.jit(jax.vmap(jitted_init(model, shape_key(x_struct))))


class TracedInit:
    """An optimizer's ``init`` traced for one member's parameters, equal to another exactly
    when both compute the same (the jaxpr's text, its constants, the output structure):
    ``fnn.optim.adam(1e-3)`` written twice traces to equal values."""

    def __init__(self, optimizer: Any, member: Any):
        self.closed, shape = jax.make_jaxpr(optimizer.init, return_shape=True)(member)
        self.out_tree = jax.tree.structure(shape)
        consts = [np.asarray(c) for c in self.closed.consts]
        self.key = (str(self.closed.jaxpr), str(self.out_tree),
                    tuple((c.dtype.str, c.shape, c.tobytes()) for c in consts))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, TracedInit) and self.key == other.key


@memoize
def _vmapped_init(traced: TracedInit) -> Callable:
    run = jax_core.jaxpr_as_fun(traced.closed)
    return jax.jit(jax.vmap(lambda leaves: run(*leaves)))


def member_init(model: Any, optimizer: Any, x_struct: Any) -> Callable:
    """``init(keys) -> (params, state, opt_state)`` with a leading member axis: each member
    initialised as ``fit`` initialises it.

    The model's init is compiled per model and input layout, the optimizer's per what it
    computes (`TracedInit`), so a fresh but equal optimizer,
    ``fnn.optim.adam(1e-3)`` written again, builds no program.
    """
    init = _jitted_member_init(model, x_struct)

    def run(keys: jax.Array) -> tuple:
        params, state = init(keys)
        member = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params)
        traced = TracedInit(optimizer, member)
        leaves = _vmapped_init(traced)(jax.tree.leaves(params))
        return params, state, jax.tree.unflatten(traced.out_tree, leaves)
    return run


@memoize
def _ensemble_validation(model, loss_fn, metric_fns, batch_size, policy,
                         data_axis: int | None = None) -> Callable:
    run = evaluation_function(model, loss_fn, metric_fns, batch_size, policy)
    return jax.jit(jax.vmap(run, in_axes=(0, 0, data_axis, data_axis)))


class Prepared(NamedTuple):
    """What `prepare` checked and built for training several members."""

    cfg: Any
    x: Any
    run_epoch: Callable
    validate: Callable | None
    shared: Any
    validation: Any
    steps: int
    batch_size: int | None
    per_member: bool        # shared / validation have a leading member axis


def prepare(where, model, loss, optimizer, data, key, epochs, batch_size, validation_data,
            metrics, loss_weights, early_stopping, drop_remainder, shuffle,
            validation_batch_size, stacked: Any = None, penalty: Any = None,
            augment: Any = None) -> Prepared:
    """``fit``'s checks (nothing compiled yet), then the vmapped epoch and validation.

    ``data`` and ``validation_data`` are one member's; the members share them, or, with
    ``stacked = (data, validation_data)`` holding a leading member axis, each trains on
    its own (cross-validation folds; ``data`` is then the first member's, for the checks).
    ``penalty`` and ``augment`` are ``fit``'s (the same for every member).
    """
    model = as_layer(model)
    checks.check_argument_order(where, loss, optimizer, data)
    x, y = checks.check_data(where, data, "data")
    n = len(jax.tree.leaves(x)[0])
    check_int(where, "epochs", epochs)
    check_int(where, "batch_size", batch_size, allow_none=True, maximum=n,
              maximum_name="the number of examples")
    cfg = build_config(model, loss, optimizer, metrics=metrics, loss_weights=loss_weights,
                       max_accumulation_steps=batch_size or n, where=where, penalty=penalty,
                       augment=augment)
    check_monitor(where, early_stopping, cfg, validation_data is not None)
    if validation_data is not None:
        xv, yv = checks.check_data(where, validation_data, "validation_data")
        checks.check_validation_data(where, x, y, xv, yv)
    param_structs, state_structs = initial_structs(cfg.model, None, None, key, x)
    out = checks.check_shapes(where, cfg, param_structs, state_structs, x, y)
    checks.check_label_range(where, cfg, y, out)
    checks.check_input_values(where, cfg.model, x)
    checks.check_finite_inputs(where, x)
    if validation_data is not None:
        checks.check_shapes(where, cfg, param_structs, state_structs, xv, yv, train=False)
        checks.check_label_range(where, cfg, yv, out, "validation_data")
        checks.check_input_values(where, cfg.model, xv, "validation_data")
    ecfg = EpochConfig(cfg, batch_size, bool(drop_remainder), "scan", None, bool(shuffle))
    axis = None if stacked is None else 0
    validate = None if validation_data is None else _ensemble_validation(
        cfg.model, cfg.loss_fn, cfg.metric_fns, validation_batch_size, cfg.policy, axis)
    full, _, remainder = plan(n, batch_size, drop_remainder)
    shared = jax.device_put((x, y) if stacked is None else stacked[0])
    validation = None if validation_data is None else jax.device_put(
        (xv, yv) if stacked is None else stacked[1])
    return Prepared(cfg, x, _ensemble_epoch(ecfg, axis), validate, shared, validation,
                    full + (remainder > 0), batch_size, stacked is not None)


def fit_ensemble(model: Any, loss: Any, optimizer: Any, data: Any, *, keys: Any, epochs: int,
                 batch_size: int | None, validation_data: Any = None,
                 metrics: Sequence[Any] = (), loss_weights: Any = None,
                 early_stopping: EarlyStopping | None = None, progress: bool = True,
                 drop_remainder: bool = False, shuffle: bool = True,
                 validation_batch_size: int | None = None,
                 chunk_size: int | None = None, checkpoint_dir: Any = None,
                 checkpoint_every: int = 1, resume: bool = False) -> FitResult:
    """Train one model per key, all in one compiled program; member ``i`` is ``fit(key=keys[i])``.

    ``model``, ``loss``, ``optimizer``, ``data``, ``epochs``, ``batch_size``,
    ``validation_data``, ``metrics``, ``loss_weights``, ``early_stopping``,
    ``drop_remainder``, ``shuffle`` and ``validation_batch_size`` are as for
    `fnn.fit` (early stopping acts per member).

    Args:
      keys: ``N`` PRNG keys, e.g. ``jax.random.split(jax.random.key(0), 8)``; each
        member's initialisation, shuffle and dropout derive from its key as in ``fit``.
      progress: one progress bar for the whole ensemble (the members' mean numbers).
      chunk_size: train at most this many members at a time (the same results, less
        memory); default from a memory estimate (`auto_chunk_size`): all at once
        unless they would not fit.
      checkpoint_dir, checkpoint_every, resume: as for `fnn.fit`: a killed ensemble
        resumed from ``checkpoint_dir`` equals the uninterrupted one (a subdirectory per
        chunk).

    Returns:
      A `fnn.FitResult` whose ``params``, ``state`` and ``opt_state`` have a
      leading member axis of size ``N``, and whose ``history`` is a list of ``N``
      dicts, each like ``fit``'s (a member stopped early has fewer epochs).

    Raises:
      ValueError: keys of the wrong type or shape, ``chunk_size`` not a positive int,
        and what ``fit`` rejects.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
      >>> y = x[:, :1] ** 2
      >>> keys = jax.random.split(jax.random.key(0), 4)
      >>> result = fnn.fit_ensemble(model, "mse", fnn.optim.adam(0.01), (x, y), keys=keys,
      ...                           epochs=5, batch_size=16, progress=False)
      >>> result.params["0"]["w"].shape, len(result.history), len(result.history[0]["loss"])
      ((4, 3, 8), 4, 5)
      >>> member = jax.tree.map(lambda a: a[2], result.params)       # one model's weights
      >>> fnn.predict(model, member, {}, x[:2]).shape
      (2, 1)
    """
    where = "fit_ensemble"
    keys = check_keys(where, keys)
    check_int(where, "chunk_size", chunk_size, allow_none=True)
    run = prepare(where, model, loss, optimizer, data, keys[0], epochs, batch_size,
                  validation_data, metrics, loss_weights, early_stopping, drop_remainder,
                  shuffle, validation_batch_size)
    init = member_init(run.cfg.model, optimizer, checks.struct(run.x))
    size = chunk_size or auto_chunk_size(run.cfg.model, optimizer, checks.struct(run.x),
                                         batch_size, keys.shape[0])
    chunks = -(-keys.shape[0] // size)
    bar = EpochBar(epochs * chunks, wants_bar(progress))
    results = []
    try:
        saving = make_saving(where, checkpoint_dir, checkpoint_every, resume, keys, run,
                             drop_remainder, shuffle, size)
        for first in range(0, keys.shape[0], size):
            chunk = keys[first:first + size]
            ids = [f"member {i}" for i in range(first, first + len(chunk))]
            results.append(train_members(chunk, ids, init(chunk), run, epochs, early_stopping,
                                         bar, where,
                                         saving=chunk_saving(saving, first // size)))
    finally:
        bar.close()
    params, state, opt_state = (stack_members([r[i] for r in results]) for i in range(3))
    history = [h for r in results for h in r[3]]
    return FitResult(params, state, opt_state, history)
