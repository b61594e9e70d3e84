"""``fit(..., checkpoint_dir=..., resume=True)``: checkpoints of a run, and continuing one.

After every ``checkpoint_every``-th epoch (and the last, and one where
training stops) ``fit`` writes a checkpoint through a
`fnn.checkpoint.Manager`: the parameters, model state and optimizer
state (its step count and schedule position included), the history so far,
the early-stopping tracker and, with ``restore_best``, the best epoch's
weights, plus what identifies the run (the key, the number of examples, the
batch size, ``shuffle`` and ``drop_remainder``). Every epoch's randomness
derives from the key and the epoch index alone (`fnn.train.fit`), so a
run resumed after epoch ``e`` runs epochs ``e + 1, ...`` with the very
shuffles and dropout masks of the uninterrupted run, through the same
compiled programs: on CPU its parameters, optimizer state and history are
bit for bit those of the run that was never stopped.
"""

from __future__ import annotations

import base64
import os
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn.checkpoint import Manager, conform, info, load
from fnn.train.data.batch_sources import IterableSource
from fnn.validation import check_int


class Resumed(NamedTuple):
    """Where a run continues: the state after epoch ``epoch`` (``start = epoch + 1``)."""

    start: int
    params: Any
    state: Any
    opt_state: Any
    history: dict
    tracker: Any
    best: Any
    stopped: bool
    stream: dict | None = None


def manager_for(where: str, checkpoint_dir: Any, checkpoint_every: int) -> Manager | None:
    """The run's `Manager` (``None`` without ``checkpoint_dir``)."""
    check_int(where, "checkpoint_every", checkpoint_every)
    if checkpoint_dir is None:
        return None
    if isinstance(checkpoint_dir, Manager):
        return checkpoint_dir
    if not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"{where}: checkpoint_dir must be a directory path or a "
                        f"fnn.checkpoint.Manager, got {checkpoint_dir!r:.80}")
    if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        raise ValueError(f"{where}: checkpoint_dir must be a folder (the checkpoints go in "
                         f"it, one file per epoch), but {os.fspath(checkpoint_dir)!r} is a "
                         f"file; pass a folder's path (it is created when missing)")
    return Manager(checkpoint_dir)


def identity(key: Any, examples: int, batch_size: int | None, drop_remainder: bool,
             shuffle: bool, **more: Any) -> dict:
    """What a resumed run must share with the run it continues (JSON-able); ``key`` may
    be an array of keys (an ensemble's), ``more`` adds entries (a sweep's configurations)."""
    data = np.asarray(jax.random.key_data(key)).ravel().tolist()
    return {"key": data, "key_impl": str(jax.random.key_impl(key)), "examples": examples,
            "batch_size": batch_size, "drop_remainder": drop_remainder, "shuffle": shuffle,
            **more}


def latest(where: str, manager: Manager, resume: bool, run: dict) -> str | None:
    """The newest checkpoint of ``manager`` to continue from (``None``: none yet).

    Raises:
      ValueError: checkpoints exist but ``resume`` is False; the checkpoint is of a
        different run (the message lists what differs).
    """
    path = manager.latest()
    if path is None:
        return None
    if not resume:
        raise ValueError(f"{where}: checkpoint_dir {manager.directory!r} already holds "
                         f"checkpoints of a run (the newest: {os.path.basename(path)}); pass "
                         f"resume=True to continue it, or use an empty directory")
    saved = (info(path).config or {}).get("fit", {})
    differ = {k: (saved.get(k), v) for k, v in run.items() if saved.get(k) != v}
    if differ:
        shown = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in differ.items())
        raise ValueError(f"{where}: the checkpoint {path} is of a different run, so resuming "
                         f"would not continue it: {shown}")
    return path


def restore(where: str, manager: Manager, resume: bool, run: dict,
            template: tuple) -> Resumed | None:
    """The newest checkpoint of ``manager`` as a `Resumed` (``None``: none yet).

    Raises:
      ValueError: as `latest`.
      CheckpointMismatchError: its arrays do not fit the model and optimizer.
    """
    path = latest(where, manager, resume, run)
    if path is None:
        return None
    tree = load(path)
    names = ("params", "state", "opt_state")
    like = dict(zip(names, template))
    if tree["best"] is not None:
        like["best"] = dict(zip(names, template))
        tree["best"] = dict(zip(names, tree["best"]))
    found = conform({k: tree[k] for k in like}, like, path)
    params, state, opt_state = (found[k] for k in names)
    best = None if tree["best"] is None else tuple(found["best"][k] for k in names)
    tracker = tree["tracker"]
    return Resumed(int(tree["epoch"]) + 1, params, state, opt_state, tree["history"],
                   tracker, best, bool(tree["stopped"]), (info(path).config or {}).get("stream"))


def write(manager: Manager, run: dict, epoch: int, params: Any, state: Any, opt_state: Any,
          history: dict, tracker: Any, best: Any, stopped: bool, metrics: dict,
          stream: dict | None = None) -> str:
    """Save the state after epoch ``epoch`` (what `restore` reads); ``stream`` is
    the position of streamed data (`position`)."""
    tree = {"epoch": epoch, "params": params, "state": state, "opt_state": opt_state,
            "history": history, "tracker": tracker,
            "best": None if best is None else tuple(best), "stopped": stopped}
    config = {"fit": run} if stream is None else {"fit": run, "stream": stream}
    return manager.save(epoch, tree, config=config, metrics=metrics)


def position(source: Any, epoch: int) -> dict | None:
    """Where a streamed run is after epoch ``epoch``, for its checkpoint (JSON-able):
    ``{"epoch": epoch + 1, "step": 0}`` and, for an iterator read across epochs
    (``steps_per_epoch``) that can tell (Grain's ``get_state()``), its state."""
    if source is None:
        return None
    place: dict = {"epoch": epoch + 1, "step": 0}
    state = source.state() if isinstance(source, IterableSource) and source.steps else None
    if isinstance(state, bytes):
        place["reader"] = {"bytes": base64.b64encode(state).decode("ascii")}
    elif state is not None:
        place["reader"] = {"json": state}
    return place


def reposition(source: Any, place: dict | None) -> None:
    """Move ``source`` to where a checkpoint's `position` says. Arrays and iterables
    read afresh for each epoch need nothing; an iterator read across epochs is restored
    from its saved state, or, when it cannot be (a plain generator), read on from where
    it is now, with a warning."""
    if not isinstance(source, IterableSource) or not source.steps:
        return
    reader = (place or {}).get("reader")
    state = None if reader is None else (
        base64.b64decode(reader["bytes"]) if "bytes" in reader else reader["json"])
    if not source.restore(state):
        warnings.warn(
            f"{source.where}: the data iterator cannot be repositioned (it has no "
            f"get_state/set_state, as a Grain iterator has), so the resumed run reads on "
            f"from where the new iterator starts; its batches differ from the uninterrupted "
            f"run's", RuntimeWarning, stacklevel=3)
