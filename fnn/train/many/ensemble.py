"""``fnn.fit_ensemble``: N models trained with N keys in one vmapped program.

Member ``i`` is ``fit(model, loss, optimizer, data, key=keys[i], ...)``: the
same initialisation (``model.init(split(keys[i])[0], x)``), the same shuffle
order and dropout keys per epoch, the same early stopping, computed together.
The epoch function is :mod:`fnn.train.epoch`'s whole-epoch ``lax.scan``
under :func:`jax.vmap` over the members (the data is shared, not copied), so
the N members cost one compilation and, on a small model, far less than N
separate fits: per step, one dispatch and batched matmuls instead of N.

Early stopping acts per member: a member that stops keeps its parameters
(they are no longer updated: the vmapped step still computes them, and a
select keeps the old values) and, with ``restore_best``, returns its best
epoch's parameters; the program ends when every member has stopped.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
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
from fnn.train.loop.history import History, check_monitor
from fnn.caching import shape_key
from fnn.train.loop.initial_values import initial_structs, jitted_init
from fnn.train.loop.progress import EpochBar, wants_bar
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
    """fit's own ``model.init`` (:func:`~fnn.train.loop.initial_values.jitted_init`), vmapped over
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
    computes (:class:`TracedInit`), so a fresh but equal optimizer,
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
    """Members per chunk so that a chunk's estimate (:func:`member_bytes`) stays within
    half of :func:`available_memory` (the shared data and XLA's workspace need the rest)."""
    per_member = max(1, member_bytes(model, optimizer, x, batch_size))
    return int(max(1, min(members, available_memory() // 2 // per_member)))


def _keep(active: jax.Array, new: Any, old: Any) -> Any:
    """Per member: ``new`` where ``active``, else ``old`` (leading member axis)."""
    def one(a, b):
        mask = jnp.reshape(active, (-1,) + (1,) * (jnp.ndim(a) - 1))
        return jnp.where(mask, a, b)
    return jax.tree.map(one, new, old)


def stack_members(parts: list) -> Any:
    """Trees with a leading member axis (chunks, groups), joined along it."""
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *parts)


class Prepared(NamedTuple):
    """What :func:`prepare` checked and built for training several members."""

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
            validation_batch_size, stacked: Any = None) -> Prepared:
    """``fit``'s checks (nothing compiled yet), then the vmapped epoch and validation.

    ``data`` and ``validation_data`` are one member's; the members share them, or, with
    ``stacked = (data, validation_data)`` holding a leading member axis, each trains on
    its own (cross-validation folds; ``data`` is then the first member's, for the checks).
    """
    model = as_layer(model)
    checks.check_argument_order(where, loss, optimizer, data)
    x, y = checks.check_data(where, data, "data")
    n = len(jax.tree.leaves(x)[0])
    check_int(where, "epochs", epochs)
    check_int(where, "batch_size", batch_size, allow_none=True, maximum=n,
              maximum_name="the number of examples")
    cfg = build_config(model, loss, optimizer, metrics=metrics, loss_weights=loss_weights,
                       max_accumulation_steps=batch_size or n, where=where)
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

    Args:
      model, loss, optimizer, data, epochs, batch_size, validation_data, metrics,
        loss_weights, early_stopping, drop_remainder, shuffle, validation_batch_size:
        as for :func:`fnn.fit` (early stopping acts per member).
      keys: ``N`` PRNG keys, e.g. ``jax.random.split(jax.random.key(0), 8)``; each
        member's initialisation, shuffle and dropout derive from its key as in ``fit``.
      progress: one progress bar for the whole ensemble (the members' mean numbers).
      chunk_size: train at most this many members at a time (the same results, less
        memory); default from a memory estimate (:func:`auto_chunk_size`): all at once
        unless they would not fit.
      checkpoint_dir, checkpoint_every, resume: as for :func:`fnn.fit`: a killed ensemble
        resumed from ``checkpoint_dir`` equals the uninterrupted one (a subdirectory per
        chunk).

    Returns:
      A :class:`fnn.FitResult` whose ``params``, ``state`` and ``opt_state`` have a
      leading member axis of size ``N``, and whose ``history`` is a list of ``N``
      dicts, each like ``fit``'s (a member stopped early has fewer epochs).

    Raises:
      ValueError: keys of the wrong type or shape, ``chunk_size`` not a positive int,
        and what ``fit`` rejects.

    Example:
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


def parallel_groups(members: int) -> int:
    """How many groups of members train side by side, one thread each: on the CPU backend
    one per core this process may use (XLA:CPU runs one small program on about one core,
    so two programs use two), capped at ``members``; one elsewhere (an accelerator runs
    the whole vmapped program at once)."""
    if jax.devices()[0].platform != "cpu":
        return 1
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    return max(1, min(cores, members))


def _rows(tree: Any, first: int, stop: int, members: int) -> Any:
    """Rows ``first .. stop-1`` of every leaf (leading member axis), rows past the last
    member being copies of the last one."""
    def one(a):
        part = a[first:min(stop, members)]
        if stop > members:
            part = jnp.concatenate([part] + [a[members - 1:members]] * (stop - max(first,
                                                                                members)))
        return part
    return jax.tree.map(one, tree)


class Saving(NamedTuple):
    """Checkpoints of one chunk of members: where, what identifies the run, how often,
    and whether to continue from the newest (see :mod:`fnn.train.loop.resume`)."""

    manager: Any
    run: dict
    every: int
    resume: bool


def make_saving(where: str, checkpoint_dir: Any, every: int, resume: bool, keys: Any,
                run: Any, drop_remainder: bool, shuffle: bool, chunk_size: int,
                **more: Any) -> Saving | None:
    """The checkpoint settings of an ensemble, sweep or the like (``None`` without a
    ``checkpoint_dir``); ``more`` adds to what identifies the run."""
    from fnn.train.loop import resume as resume_
    manager = resume_.manager_for(where, checkpoint_dir, every)
    if manager is None:
        return None
    examples = len(jax.tree.leaves(run.x)[0])
    identity = resume_.identity(keys, examples, run.batch_size, bool(drop_remainder),
                                bool(shuffle), chunk_size=chunk_size, **more)
    return Saving(manager, identity, every, bool(resume))


def chunk_saving(saving: Saving | None, index: int) -> Saving | None:
    """``saving`` for chunk ``index`` (its own subdirectory ``chunk-NNN``)."""
    if saving is None:
        return None
    from fnn.checkpoint import Manager
    directory = os.path.join(saving.manager.directory, f"chunk-{index:03d}")
    manager = Manager(directory, keep=saving.manager.keep)
    return saving._replace(manager=manager, run={**saving.run, "chunk": index})


def _restore_members(where: str, saving: Saving, start: tuple) -> dict | None:
    """The newest checkpoint of a chunk (``None``: none), its arrays checked against
    ``start`` (leading member axis)."""
    from fnn.checkpoint import conform, load
    from fnn.train.loop import resume
    path = resume.latest(where, saving.manager, saving.resume, saving.run)
    if path is None:
        return None
    tree = load(path)
    names = ("params", "state", "opt_state")
    like = {name: dict(zip(names, start)) for name in ("current", "best")
            if tree[name] is not None}
    found = conform({name: dict(zip(names, tree[name])) for name in like}, like, path)
    tree.update({name: tuple(found[name][k] for k in names) for name in found})
    return tree


def train_members(keys, ids, start, run, epochs, early_stopping, bar, where,
                  groups: int | None = None, saving: Saving | None = None):
    """Train one chunk of members from ``start = (params, state, opt_state)`` (a leading
    member axis) as :func:`prepare`'s ``run`` says; ``ids`` name the members in errors.

    On a CPU with several cores the members are split into :func:`parallel_groups`
    groups of one size (the last member repeated to fill the last group; its copies are
    dropped), each group's epochs running in its own thread: the same vmapped program,
    the same numbers per member, both cores busy. ``groups`` overrides that count.

    With ``saving``, the chunk's state is checkpointed as ``fit`` does it (every member's
    params, state, optimizer state, best copy, history, tracker and whether it is still
    training), and with ``saving.resume`` training continues from the newest checkpoint;
    a finished chunk's last checkpoint holds its results.

    Returns:
      ``(params, state, opt_state, histories, best_epochs)``; ``best_epochs[m]`` is the
      epoch whose parameters member ``m`` returns (its last, or its best when early
      stopping restores it).
    """
    cfg, run_epoch, validate = run.cfg, run.run_epoch, run.validate
    steps, batch_size = run.steps, run.batch_size
    members = keys.shape[0]
    count = min(groups, members) if groups else parallel_groups(members)
    size = -(-members // count)
    bounds = [(g * size, (g + 1) * size) for g in range(count)]
    active = np.ones(count * size, bool)
    active[members:] = False          # the repeated copies need not train on
    histories = [History(cfg.logged_names(), steps, batch_size) for _ in range(members)]
    trackers = [None if early_stopping is None else early_stopping.init()
                for _ in range(members)]
    first, best_start = 0, None
    restored = None if saving is None else _restore_members(where, saving, start)
    if restored is not None:
        if restored["finished"]:
            params, state, opt_state = jax.device_put(restored["current"])
            bar.update({})
            return (params, state, opt_state, restored["histories"],
                    list(restored["best_epochs"]))
        first = int(restored["epoch"]) + 1
        start, best_start = jax.device_put((restored["current"], restored["best"]))
        active[:members] = restored["active"]
        trackers = restored["trackers"]
        histories = [History(cfg.logged_names(), steps, batch_size, values, float(skipped))
                     for values, skipped in zip(restored["histories"],
                                                np.asarray(restored["skipped_before"],
                                                           np.float64))]
    # Per group: its keys, its training state, its data (its own rows when each member
    # has its own data, as cross-validation's folds do), its best-epoch copy.
    group_keys = [_rows(keys, *b, members) for b in bounds]
    carries = [_rows(start, *b, members) for b in bounds]
    datas = [_rows((run.shared, run.validation), *b, members) if run.per_member
             else (run.shared, run.validation) for b in bounds]
    bests: list = ([None] * count if best_start is None
                   else [_rows(best_start, *b, members) for b in bounds])

    def whole(parts: list) -> Any:
        """The members' rows (without the repeated copies) of per-group trees."""
        joined = stack_members(parts)
        return joined if count * size == members else _rows(joined, 0, members, members)

    def save(epoch: int, finished: bool, current: Any, best_epochs: list | None) -> None:
        best = None if finished or bests[0] is None else whole(bests)
        saving.manager.save(epoch, {
            "epoch": epoch, "finished": finished, "current": current, "best": best,
            "active": active[:members].copy(), "histories": [h.values for h in histories],
            "trackers": trackers,
            "skipped_before": np.array([h.skipped_before for h in histories], np.float64),
            "best_epochs": best_epochs}, config={"fit": saving.run})

    def one_epoch(g: int, epoch: int):
        params, state, opt_state = carries[g]
        shared, validation = datas[g]
        new = run_epoch(params, state, opt_state, shared, group_keys[g], epoch)
        if early_stopping is None:
            params, state, opt_state = new[:3]
        else:
            mask = jnp.asarray(active[bounds[g][0]:bounds[g][1]])
            params, state, opt_state = _keep(mask, new[:3], (params, state, opt_state))
        val_numbers = {} if validate is None else validate(params, state, *validation)
        return (params, state, opt_state), jax.device_get((new[3], val_numbers))

    epoch = first - 1
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        for epoch in range(first, epochs):
            outs = list(pool.map(functools.partial(one_epoch, epoch=epoch), range(count)))
            carries = [out[0] for out in outs]
            numbers, val_numbers = (jax.tree.map(lambda *a: np.concatenate(a),
                                                 *[out[1][i] for out in outs])
                                    for i in range(2))
            improved = np.zeros(count * size, bool)
            for m in np.flatnonzero(active):
                mine = {k: v[m] for k, v in numbers.items()}
                try:
                    logs = histories[m].record(epoch, mine, {k: v[m] for k, v in
                                                             val_numbers.items()})
                except FloatingPointError as err:
                    raise FloatingPointError(f"{where}: {ids[m]}: {err}") from None
                if early_stopping is not None:
                    trackers[m], improved[m], stop = early_stopping.update(
                        trackers[m], epoch, logs[early_stopping.monitor])
                    if stop:
                        active[m] = False
            if early_stopping is not None and early_stopping.restore_best:
                bests = [carries[g] if bests[g] is None else
                         _keep(jnp.asarray(improved[bounds[g][0]:bounds[g][1]]), carries[g], bests[g])
                         for g in range(count)]
            current_logs = [h.values for h in histories
                            if len(h.values.get("loss", ())) == epoch + 1]
            bar.update({name: float(np.mean([h[name][-1] for h in current_logs]))
                        for name in (current_logs[0] if current_logs else {})})
            if not active.any():
                break
            if (saving is not None and epoch < epochs - 1
                    and (epoch + 1) % saving.every == 0):
                save(epoch, False, tuple(whole([c[i] for c in carries]) for i in range(3)),
                     None)
    best_epochs = [len(h.values["loss"]) - 1 for h in histories]
    if bests[0] is not None:
        carries = bests
        best_epochs = [t.best_epoch for t in trackers]
    params, state, opt_state = (whole([c[i] for c in carries]) for i in range(3))
    if saving is not None:
        save(epoch, True, (params, state, opt_state), best_epochs)
    return params, state, opt_state, [h.values for h in histories], best_epochs
