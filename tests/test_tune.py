"""fnn.tune against fit (a trial equals fit with its configuration), one program per
structure, pruning, bad input, and workers that die or share a study in SQLite."""

import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

import fnn
from tests.compile_events import programs_built

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 5)).astype(np.float32)
Y = (X[:, :1] * 0.5 - X[:, 1:2] + 0.1 * RNG.normal(size=(96, 1))).astype(np.float32)
KEY = jax.random.key(3)
MODEL = {8: fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)]),
         16: fnn.Sequential([fnn.Dense(16), fnn.Activation("tanh"), fnn.Dense(1)])}
WORKER = os.path.join(os.path.dirname(__file__), "scripts", "tune_worker.py")


def build(trial):
    lr = trial.suggest_float("learning_rate", 1e-3, 3e-1, log=True)
    decay = trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True)
    width = trial.suggest_categorical("width", [8, 16])
    return {"model": MODEL[width], "loss": "mse",
            "optimizer": fnn.optim.adamw(lr, weight_decay=decay), "batch_size": 32}


def test_a_trial_equals_fit_with_its_configuration():
    result = fnn.tune(build, (X, Y), n_trials=6, epochs=4, key=KEY, validation_split=0.25,
                      sampler=optuna.samplers.RandomSampler(seed=0), progress=False)
    assert len(result.study.trials) == 6 and len(result.table) == 6
    groups = {t.user_attrs["group"] for t in result.study.trials}
    assert len(groups) <= 2 and any("trials" in g for g in groups)    # widths 8 and 16
    best = result.best_trial
    config = build(optuna.trial.FixedTrial(best.params))
    fitted = fnn.fit(config["model"], "mse", config["optimizer"], (X, Y), epochs=4,
                     batch_size=32, key=KEY, validation_split=0.25, progress=False)
    np.testing.assert_allclose(min(fitted.history["val_loss"]), best.value, rtol=1e-5)
    np.testing.assert_allclose(best.user_attrs["history"]["val_loss"],
                               fitted.history["val_loss"], rtol=1e-5)
    epoch = int(np.argmin(fitted.history["val_loss"]))
    if epoch == 3:      # the returned parameters are the best epoch's: here the last one's
        for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(fitted.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert str(result.table).splitlines()[1].split()[0] == str(best.number)


def test_one_structure_is_one_program_and_a_second_study_builds_none():
    def lr_only(trial):
        lr = trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
        return {"model": MODEL[8], "loss": "mse", "optimizer": fnn.optim.adam(lr)}
    run = dict(n_trials=4, epochs=2, key=KEY, monitor="loss", progress=False, group_size=4,
               batch_size=32)
    first = fnn.tune(lr_only, (X, Y), **run)
    assert len({t.user_attrs["group"] for t in first.study.trials}) == 1
    with programs_built() as built:
        fnn.tune(lr_only, (X, Y), **run)         # fresh but equal optimizers
    assert built == []


def test_the_median_pruner_prunes_the_bad_learning_rates():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=3,
                                                                    n_warmup_steps=1))
    rates = [0.1, 0.05, 0.03, 1e-6, 2e-6, 3e-6]
    for lr in rates:
        study.enqueue_trial({"learning_rate": lr})

    def fixed(trial):
        lr = trial.suggest_float("learning_rate", 1e-7, 1.0, log=True)
        return {"model": MODEL[8], "loss": "mse", "optimizer": fnn.optim.sgd(lr)}
    result = fnn.tune(fixed, (X, Y), n_trials=6, epochs=6, key=KEY, study=study,
                      monitor="loss", group_size=3, progress=False)
    states = {t.params["learning_rate"]: t.state for t in result.study.trials}
    pruned = optuna.trial.TrialState.PRUNED
    assert all(states[lr] == optuna.trial.TrialState.COMPLETE for lr in rates[:3])
    assert all(states[lr] == pruned for lr in rates[3:]), states
    assert all(t.user_attrs["epochs"] < 6 for t in result.study.trials if t.state == pruned)


def test_a_trial_that_does_not_build_or_diverges_fails_and_the_study_goes_on():
    def shaky(trial):
        kind = trial.suggest_categorical("kind", ["ok", "conv", "huge"])
        model = fnn.Sequential([fnn.Conv2D(4, 3), fnn.Dense(1)]) if kind == "conv" else MODEL[8]
        return {"model": model, "loss": "mse",
                "optimizer": fnn.optim.sgd(1e30 if kind == "huge" else 0.05)}
    study = optuna.create_study()
    for kind in ("conv", "huge", "ok"):
        study.enqueue_trial({"kind": kind})
    result = fnn.tune(shaky, (X, Y), n_trials=3, epochs=2, key=KEY, study=study,
                      monitor="loss", group_size=3, progress=False)
    by_kind = {t.params["kind"]: t for t in result.study.trials}
    assert by_kind["conv"].state == optuna.trial.TrialState.FAIL
    assert "Conv2D" in by_kind["conv"].user_attrs["error"]
    assert by_kind["huge"].state == optuna.trial.TrialState.FAIL
    assert by_kind["ok"].state == optuna.trial.TrialState.COMPLETE
    assert result.best_trial.params == {"kind": "ok"}


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_trials=0), ValueError, "n_trials must be"),
    (dict(monitor="val_accuracy", direction="maximize"), ValueError,
     "monitor=.val_accuracy. is not a number"),
    (dict(monitor="loss", direction="maximize"), ValueError, "contradicts monitor='loss'"),
    (dict(storage="sqlite:////no/such/dir/study.db"), ValueError, "cannot open the study"),
])
def test_bad_arguments_are_refused(kwargs, error, message):
    run = dict(n_trials=2, epochs=1, key=KEY, progress=False, validation_split=0.25)
    with pytest.raises(error, match=message):
        fnn.tune(build, (X, Y), **{**run, **kwargs})


def test_build_must_return_the_dict():
    with pytest.raises(TypeError, match="it returned list"):
        fnn.tune(lambda trial: [MODEL[8]], (X, Y), n_trials=1, epochs=1, key=KEY,
                 monitor="loss", progress=False)


def _worker(storage, n_trials, *extra):
    return subprocess.Popen([sys.executable, WORKER, storage, str(n_trials), *map(str, extra)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})


def _finished(storage):
    study = optuna.load_study(study_name="shared", storage=storage)
    state = optuna.trial.TrialState
    return study, [t for t in study.trials if t.state in (state.COMPLETE, state.PRUNED)]


def test_a_killed_worker_loses_nothing_and_its_trial_is_retried(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    worker = _worker(storage, 5, 3)
    assert worker.stdout.readline().strip() == "hang", worker.stderr.read()[-2000:]
    worker.kill()                              # SIGKILL while trials 2 and 3 are running
    worker.communicate()
    study, done = _finished(storage)
    assert len(done) == 2
    again = _worker(storage, 5)
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0 and "done" in out, err[-2000:]
    study, done = _finished(storage)
    assert len(done) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = fnn.tuning.study.retry_callback_class()
        retried = {retry.retried_trial_number(t): t for t in done}
    lost = {t.number: t.params for t in study.trials if t.state == optuna.trial.TrialState.FAIL}
    assert set(lost) <= set(retried) and 3 in lost
    for number, params in lost.items():
        assert retried[number].params == params      # retried with the same parameters


def test_two_workers_on_one_sqlite_file_finish_n_trials_between_them(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    workers = [_worker(storage, 8) for _ in range(2)]
    outputs = []
    try:
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:          # never leave a worker (and its pipes) behind for a later test
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0 and "done" in out, err[-2000:]
    study, done = _finished(storage)
    assert len(done) == 8
    others = [t for t in study.trials if t not in done]       # asked by both at once, if any
    assert all(t.user_attrs.get("fnn_surplus") for t in others), others
