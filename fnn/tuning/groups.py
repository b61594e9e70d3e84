"""Training the trials of one structure together: one vmapped program, pruned members stop.

The trials of a group start from the same key, so from the same initial weights,
shuffle order and dropout masks (``fit``'s own init), each with its optimizer's
own state; they train as the members of :func:`fnn.train.many.members.train_members`
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
from fnn.train.many.members import train_members
from fnn.tuning.trial_config import TrialConfig


class MemberResult(NamedTuple):
    """One trial's outcome: ``"complete"``, ``"pruned"`` or ``"failed"``, its best
    monitored value (``None`` if it never had one), its history, the epoch of its
    returned parameters, those parameters and state, and why it failed."""

    outcome: str
    value: float | None
    history: dict
    best_epoch: int
    params: Any
    state: Any
    error: str | None


def _repeat(tree: Any, count: int) -> Any:
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (count,) + jnp.shape(a)), tree)


def train_group(trials: list, configs: list[TrialConfig], data: Any, validation: Any,
                key: Any, epochs: int, monitor: str, mode: str, bar: EpochBar,
                params: Any, state: Any, where: str) -> list[MemberResult]:
    """Train ``configs`` (one structure, one per trial of ``trials``) as one vmapped program.

    Args:
      trials: the Optuna trials, reported to every epoch.
      configs: their configurations (equal but for the optimizers' state values).
      data, validation: the training and validation data (shared by the members).
      key: every member's key (fit's).
      epochs: epochs per trial.
      monitor, mode: the number each trial is scored by, and whether lower is better.
      bar: the progress bar.
      params, state: the model's initial values (fit's init from ``key``).
      where: the calling function, named in messages.

    Returns:
      One :class:`MemberResult` per trial, in order.
    """
    first = configs[0]
    stopping = EarlyStopping(monitor=monitor, mode=mode, patience=epochs, restore_best=True)
    run = prepare(where, first.model, first.loss, first.optimizer, data, key, epochs,
                  first.batch_size, validation, first.metrics, None, stopping, False, True,
                  None, penalty=first.penalty, augment=first.augment)
    count = len(configs)
    states = [config.optimizer.init(params) for config in configs]
    start = (_repeat(params, count), _repeat(state, count),
             jax.tree.map(lambda *a: jnp.stack(a), *states))
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
    out_params, out_state, _, histories, best_epochs = train_members(
        jnp.stack([key] * count), ids, start, run, epochs, stopping, bar, where,
        on_epoch=on_epoch, on_nonfinite=on_nonfinite)
    results = []
    for m, history in enumerate(histories):
        values = np.asarray(history.get(monitor, []), np.float64)
        finite = values[np.isfinite(values)]
        value = None if not finite.size else float(
            finite.min() if mode == "min" else finite.max())
        outcome = "failed" if m in failed or value is None else (
            "pruned" if m in pruned else "complete")
        pick = jax.tree.map(lambda a, m=m: a[m], (out_params, out_state))
        results.append(MemberResult(outcome, value, history, int(best_epochs[m]), *pick,
                                    failed.get(m)))
    return results
