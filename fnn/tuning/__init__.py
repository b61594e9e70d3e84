"""Hyperparameter tuning on Optuna: ``fnn.tune``, whose trials train in vmapped groups.

fnn does not write a tuner: Optuna (the optional extra ``fnn[tune]``) samples,
prunes and stores the study; fnn makes its trials cheap by training the trials
of one structure as one compiled, vmapped program. The modules, each importing
only those above it:

- `fnn.tuning.study`: the study in its database, heartbeats, counting trials;
- `fnn.tuning.trial_config`: ``build(trial)``'s dict, and which trials share a program;
- `fnn.tuning.groups`: one group's training, reporting to the pruner;
- `fnn.tuning.loop`: `tune`, the worker's loop;
- `fnn.tuning.space`: search spaces written in a TOML config (``fnn tune``).
"""

from fnn.tuning.loop import TuneResult, tune

__all__ = ["tune", "TuneResult"]
