"""The host loop of many members: one chunk of vmapped members trained epoch by epoch,
in groups of threads on a CPU, with one `fnn.train.loop.history.History` per member
(the same record, NaN checks and logs as ``fit``), early stopping per member, and
checkpoints of the chunk. ``fit_ensemble``, ``sweep`` and ``cross_validate`` all train
through `train_members`."""

from __future__ import annotations

import concurrent.futures
import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.caching import memoize
from fnn.train.loop.history import History


@jax.jit
def _keep(active: jax.Array, new: Any, old: Any) -> Any:
    """Per member: ``new`` where ``active``, else ``old`` (leading member axis); one
    compiled call per epoch (the eager ``where`` per leaf cost a dispatch each)."""
    def one(a, b):
        mask = jnp.reshape(active, (-1,) + (1,) * (jnp.ndim(a) - 1))
        return jnp.where(mask, a, b)
    return jax.tree.map(one, new, old)


@memoize
def _fused_epoch(run_epoch: Any, validate: Any, masked: bool) -> Any:
    """One compiled call per epoch: the members' epoch, the mask that keeps stopped members
    as they were, and the validation pass (three calls before, each a dispatch and a
    synchronisation; the ensemble's and the tuner's per-epoch host time)."""
    def fused(carry, shared, keys, epoch, mask, validation):
        params, state, opt_state = carry
        new = run_epoch(params, state, opt_state, shared, keys, epoch)
        carry = _keep(mask, new[:3], carry) if masked else tuple(new[:3])
        val_numbers = {} if validate is None else validate(carry[0], carry[1], *validation)
        return carry, new[3], val_numbers
    return jax.jit(fused)


def repeat_members(tree: Any, count: int) -> Any:
    """``count`` copies of ``tree``'s arrays along a new leading (member) axis, made on the
    host: an eager device op would compile a small program per leaf shape."""
    return jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (count,) + np.shape(a)),
                        tree)


def stack_members(parts: list) -> Any:
    """Trees with a leading member axis (chunks, groups), joined along it."""
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *a: jnp.concatenate(a), *parts)


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
            join = np.concatenate if isinstance(a, np.ndarray) else jnp.concatenate
            part = join([part] + [a[members - 1:members]] * (stop - max(first, members)))
        return part
    return jax.tree.map(one, tree)


class Saving(NamedTuple):
    """Checkpoints of one chunk of members: where, what identifies the run, how often,
    and whether to continue from the newest (see `fnn.train.loop.resume`)."""

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
                  groups: int | None = None, saving: Saving | None = None,
                  on_epoch: Any = None, on_nonfinite: Any = None,
                  pad_to: int | None = None):
    """Train one chunk of members from ``start = (params, state, opt_state)`` (a leading
    member axis) as `prepare`'s ``run`` says; ``ids`` name the members in errors.

    On a CPU with several cores the members are split into `parallel_groups`
    groups of one size (the last member repeated to fill the last group; its copies are
    dropped), each group's epochs running in its own thread: the same vmapped program,
    the same numbers per member, both cores busy. ``groups`` overrides that count.

    With ``saving``, the chunk's state is checkpointed as ``fit`` does it (every member's
    params, state, optimizer state, best copy, history, tracker and whether it is still
    training), and with ``saving.resume`` training continues from the newest checkpoint;
    a finished chunk's last checkpoint holds its results.

    ``on_epoch(member, epoch, logs) -> bool``, when given, is called after every epoch
    for every member still training (after early stopping's update); ``True`` stops that
    member (its parameters stay as they are, as an early-stopped member's do).
    ``on_nonfinite(member, error)``, when given, is called instead of raising when a
    member's loss or parameters become NaN/inf; that member stops. ``pad_to`` trains at
    least that many members (copies of the last one, dropped from the results), so that
    chunks of varying sizes share a few compiled programs.

    Returns:
      ``(params, state, opt_state, histories, best_epochs)``; ``best_epochs[m]`` is the
      epoch whose parameters member ``m`` returns (its last, or its best when early
      stopping restores it).
    """
    cfg, run_epoch, validate = run.cfg, run.run_epoch, run.validate
    steps, batch_size = run.steps, run.batch_size
    members = keys.shape[0]
    count = min(groups, members) if groups else parallel_groups(members)
    size = -(-max(members, pad_to or 0) // count)
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
    # Committed to the data's device, like the epoch's outputs: an uncommitted first carry
    # (from eager stacking) made the second epoch's call a cache miss, compiling every
    # member program twice.
    # Split on the host: slicing on the device compiled a small program per leaf shape.
    device = next(iter(jax.tree.leaves(run.shared)[0].devices()))
    host_start = jax.tree.map(np.asarray, start)
    carries = [jax.device_put(_rows(host_start, *b, members), device) for b in bounds]
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

    masked = not (early_stopping is None and on_epoch is None and on_nonfinite is None)
    epoch_and_validation = _fused_epoch(run_epoch, validate, masked)

    def one_epoch(g: int, epoch: int):
        shared, validation = datas[g]
        mask = jnp.asarray(active[bounds[g][0]:bounds[g][1]]) if masked else None
        carry, numbers, val_numbers = epoch_and_validation(
            carries[g], shared, group_keys[g], epoch, mask, validation)
        return carry, jax.device_get((numbers, val_numbers))

    epoch = first - 1
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        for epoch in range(first, epochs):
            if epoch == first and count > 1:
                # The first group alone first: two threads calling a program that is not
                # compiled yet would each compile it (measured: twice the compile time).
                outs = [one_epoch(0, epoch)] + list(pool.map(
                    functools.partial(one_epoch, epoch=epoch), range(1, count)))
            else:
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
                    if on_nonfinite is None:
                        raise FloatingPointError(f"{where}: {ids[m]}: {err}") from None
                    on_nonfinite(m, err)
                    active[m] = False
                    continue
                if early_stopping is not None:
                    trackers[m], improved[m], stop = early_stopping.update(
                        trackers[m], epoch, logs[early_stopping.monitor])
                    if stop:
                        active[m] = False
                if on_epoch is not None and active[m] and on_epoch(m, epoch, logs):
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
    best_epochs = [len(h.values.get("loss", ())) - 1 for h in histories]
    if bests[0] is not None:
        carries = bests
        best_epochs = [t.best_epoch for t in trackers]
    params, state, opt_state = (whole([c[i] for c in carries]) for i in range(3))
    if saving is not None:
        save(epoch, True, (params, state, opt_state), best_epochs)
    return params, state, opt_state, [h.values for h in histories], best_epochs
