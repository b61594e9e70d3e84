"""Training the trials of one structure together: one vmapped program, pruned members stop.

The trials of a group start from the same key, so from the same initial weights,
shuffle order and dropout masks (``fit``'s own init), each with its optimizer's
own state; they train as the members of `fnn.train.many.members.train_members`
(on a CPU, in one thread per core). After every epoch each member reports its
monitored value to its trial (``trial.report``); a member whose trial Optuna's
pruner prunes (``trial.should_prune()``) stops updating inside the program.
A member's training equals ``fit`` with its configuration and the same key.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.train.loop.early_stopping import EarlyStopping
from fnn.train.loop.progress import EpochBar
from fnn.train.many.ensemble import prepare
from fnn.train.many.members import repeat_members, train_members
from fnn.tuning.trial_config import TrialConfig


class MemberResult(NamedTuple):
    """One trial's outcome: ``"complete"``, ``"pruned"`` or ``"failed"``, its best
    monitored value (``None`` if it never had one), its history, the group's stacked
    ``(params, state)`` (its best epoch's) and the trial's row in them (`member_values`
    takes it out), and why it failed."""

    outcome: str
    value: float | None
    history: dict
    stacked: Any
    row: int
    error: str | None


def member_values(result: MemberResult) -> tuple[Any, Any]:
    """``(params, state)`` of one trial, taken out of its group's stacked arrays on the host
    (slicing on the device would compile a program per shape)."""
    return jax.device_put(jax.tree.map(lambda a: np.asarray(a)[result.row], result.stacked))


LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)


def ladder(count: int) -> int:
    """The number of members a group of ``count`` trials trains: the next size on
    `LADDER` (each step at most 1.5x the one before), so groups of varying sizes,
    batch after batch, share a few compiled programs (a program is compiled per member
    count) for at most a third more computation."""
    return next((size for size in LADDER if size >= count), count)


def train_group(trials: list, configs: list[TrialConfig], opt_states: list, data: Any,
                validation: Any, key: Any, epochs: int, monitor: str, mode: str,
                bar: EpochBar, params: Any, state: Any, where: str) -> list[MemberResult]:
    """Train ``configs`` (one structure, one per trial of ``trials``) as one vmapped program.

    Args:
      trials: the Optuna trials, reported to every epoch.
      configs: their configurations (equal but for the optimizers' state values).
      opt_states: their optimizers' initial states.
      data, validation: the training and validation data (shared by the members).
      key: every member's key (fit's).
      epochs: epochs per trial.
      monitor, mode: the number each trial is scored by, and whether lower is better.
      bar: the progress bar.
      params, state: the model's initial values (fit's init from ``key``).
      where: the calling function, named in messages.

    Returns:
      One `MemberResult` per trial, in order.
    """
    first = configs[0]
    stopping = EarlyStopping(monitor=monitor, mode=mode, patience=epochs, restore_best=True)
    run = prepare(where, first.model, first.loss, first.optimizer, data, key, epochs,
                  first.batch_size, validation, first.metrics, None, stopping, False, True,
                  None, penalty=first.penalty, augment=first.augment)
    count = len(configs)
    start = (repeat_members(params, count), repeat_members(state, count),
             jax.tree.map(lambda *a: np.stack([np.asarray(v) for v in a]), *opt_states))
    pruned, failed = set(), {}

    def on_epoch(m: int, epoch: int, logs: dict) -> bool:
        trials[m].report(float(logs[monitor]), epoch)
        if trials[m].should_prune():
            pruned.add(m)
            return True
        return False

    def on_nonfinite(m: int, error: Exception) -> None:
        failed[m] = str(error)

    ids = [f"trial {trial.number}" for trial in trials]
    out_params, out_state, _, histories, _ = train_members(
        jnp.stack([key] * count), ids, start, run, epochs, stopping, bar, where,
        on_epoch=on_epoch, on_nonfinite=on_nonfinite, pad_to=ladder(count))
    results = []
    for m, history in enumerate(histories):
        values = np.asarray(history.get(monitor, []), np.float64)
        finite = values[np.isfinite(values)]
        value = None if not finite.size else float(
            finite.min() if mode == "min" else finite.max())
        outcome = "failed" if m in failed or value is None else (
            "pruned" if m in pruned else "complete")
        results.append(MemberResult(outcome, value, history,
                                    (out_params, out_state), m, failed.get(m)))
    return results
