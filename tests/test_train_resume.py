"""fit(checkpoint_dir=, resume=True): a run killed after an epoch and resumed equals the
uninterrupted run bit for bit (dropout, BatchNorm, a schedule, early stopping with restore_best);
resuming a finished run, refusing a foreign or unasked-for checkpoint."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import fnn

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "resume_check.py")


def run(run_dir, mode, out):
    return subprocess.run([sys.executable, SCRIPT, str(run_dir), mode, str(out)],
                          env={**os.environ, "JAX_PLATFORMS": "cpu"}, capture_output=True,
                          text=True, timeout=300)


def test_a_killed_and_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path):
    whole = run(tmp_path / "unused", "whole", tmp_path / "whole.safetensors")
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = run(tmp_path / "run", "kill 4", tmp_path / "never.safetensors")
    assert killed.returncode == -9                       # SIGKILL, at the end of epoch 4
    assert not (tmp_path / "never.safetensors").exists()
    assert fnn.checkpoint.Manager(tmp_path / "run").epochs() == [1, 2, 3]
    resumed = run(tmp_path / "run", "resume", tmp_path / "resumed.safetensors")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = fnn.checkpoint.load(tmp_path / "whole.safetensors")
    b = fnn.checkpoint.load(tmp_path / "resumed.safetensors")
    assert len(a.history["loss"]) < 16                   # early stopping stopped it
    assert a.history == b.history                         # every float, exactly
    for x, y in zip(jax.tree.leaves((a.params, a.state, a.opt_state)),
                    jax.tree.leaves((b.params, b.state, b.opt_state))):
        np.testing.assert_array_equal(x, y)


X = np.random.default_rng(0).normal(size=(24, 3)).astype(np.float32)
Y = X[:, :1] * 2.0
MODEL = fnn.Sequential([fnn.Dense(4), fnn.Activation("tanh"), fnn.Dense(1)])
OPTIONS = dict(batch_size=8, key=jax.random.key(0), progress=False)


def test_resuming_a_finished_run_returns_it_and_more_epochs_continue_it(tmp_path):
    opt = fnn.optim.sgd(0.1)
    done = fnn.fit(MODEL, "mse", opt, (X, Y), epochs=3, checkpoint_dir=tmp_path, **OPTIONS)
    again = fnn.fit(MODEL, "mse", opt, (X, Y), epochs=3, checkpoint_dir=tmp_path, resume=True,
                    **OPTIONS)
    assert again.history == done.history
    jax.tree.map(np.testing.assert_array_equal, again.params, done.params)
    longer = fnn.fit(MODEL, "mse", opt, (X, Y), epochs=5, checkpoint_dir=tmp_path,
                     resume=True, **OPTIONS)
    straight = fnn.fit(MODEL, "mse", opt, (X, Y), epochs=5, **OPTIONS)
    assert longer.history == straight.history
    jax.tree.map(np.testing.assert_array_equal, longer.params, straight.params)


def test_checkpoints_of_another_run_or_without_resume_are_refused(tmp_path):
    opt = fnn.optim.sgd(0.1)
    fnn.fit(MODEL, "mse", opt, (X, Y), epochs=2, checkpoint_dir=tmp_path, **OPTIONS)
    with pytest.raises(ValueError, match="already holds checkpoints .* pass resume=True"):
        fnn.fit(MODEL, "mse", opt, (X, Y), epochs=2, checkpoint_dir=tmp_path, **OPTIONS)
    with pytest.raises(ValueError, match="of a different run.*batch_size: checkpoint 8, now 4"):
        fnn.fit(MODEL, "mse", opt, (X, Y), epochs=2, checkpoint_dir=tmp_path, resume=True,
                **{**OPTIONS, "batch_size": 4})
    wider = fnn.Sequential([fnn.Dense(5), fnn.Activation("tanh"), fnn.Dense(1)])
    with pytest.raises(fnn.checkpoint.CheckpointMismatchError, match="mismatched  params/0/w"):
        fnn.fit(wider, "mse", opt, (X, Y), epochs=2, checkpoint_dir=tmp_path, resume=True,
                **OPTIONS)
    with pytest.raises(ValueError, match="checkpoint_every"):
        fnn.fit(MODEL, "mse", opt, (X, Y), epochs=2, checkpoint_dir=tmp_path / "new",
                checkpoint_every=0, **OPTIONS)


def test_determinism_switch_sets_the_flag_before_jax_starts():
    code = ("import os; os.environ.pop('XLA_FLAGS', None); "
            "from fnn.train.determinism import use_deterministic_ops; "
            "print(use_deterministic_ops()); import jax; jax.numpy.ones(1).block_until_ready(); "
            "\ntry:\n    os.environ['XLA_FLAGS'] = ''; use_deterministic_ops()\n"
            "except RuntimeError as e:\n    print('refused:', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = out.stdout.strip().splitlines()
    assert first == "--xla_gpu_deterministic_ops=true"
    assert second.startswith("refused: use_deterministic_ops: JAX's backend has already started")


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, chunk, epoch):
    """Make the checkpoint of ``epoch`` in chunk ``chunk`` the last thing a run does."""
    save = fnn.checkpoint.Manager.save

    def saving(self, at, tree, **kwargs):
        path = save(self, at, tree, **kwargs)
        if self.directory.endswith(f"chunk-{chunk:03d}") and at == epoch:
            raise Interrupted
        return path
    monkeypatch.setattr(fnn.checkpoint.Manager, "save", saving)


def assert_identical(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


ENSEMBLE = fnn.Sequential([fnn.Dense(6), fnn.Activation("tanh"), fnn.Dropout(0.2),
                           fnn.Dense(1)])
LONG = dict(epochs=7, batch_size=8, progress=False, validation_data=(X[:8], Y[:8]),
            early_stopping=fnn.EarlyStopping("val_loss", patience=1))


def test_an_interrupted_ensemble_resumes_to_the_uninterrupted_one(tmp_path, monkeypatch):
    keys = jax.random.split(jax.random.key(5), 3)
    opt = fnn.optim.adam(0.05)
    straight = fnn.fit_ensemble(ENSEMBLE, "mse", opt, (X, Y), keys=keys, **LONG)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 0, 2)
        with pytest.raises(Interrupted):
            fnn.fit_ensemble(ENSEMBLE, "mse", opt, (X, Y), keys=keys, checkpoint_dir=tmp_path,
                             **LONG)
    resumed = fnn.fit_ensemble(ENSEMBLE, "mse", opt, (X, Y), keys=keys,
                               checkpoint_dir=tmp_path, resume=True, **LONG)
    assert resumed.history == straight.history
    assert_identical((resumed.params, resumed.opt_state), (straight.params, straight.opt_state))
    again = fnn.fit_ensemble(ENSEMBLE, "mse", opt, (X, Y), keys=keys,
                             checkpoint_dir=tmp_path, resume=True, **LONG)   # finished
    assert_identical(again.params, straight.params)
    with pytest.raises(ValueError, match="different run.*key"):
        fnn.fit_ensemble(ENSEMBLE, "mse", opt, (X, Y), keys=keys[::-1],
                         checkpoint_dir=tmp_path, resume=True, **LONG)


def test_an_interrupted_sweep_resumes_chunk_by_chunk(tmp_path, monkeypatch):
    options = dict(hyperparams={"learning_rate": [0.01, 0.05, 0.1]}, key=jax.random.key(2),
                   chunk_size=2, **LONG)
    opt = fnn.optim.sgd(0.1)
    straight = fnn.sweep(ENSEMBLE, "mse", opt, (X, Y), **options)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1, 1)            # chunk 0 done, chunk 1 after epoch 1
        with pytest.raises(Interrupted):
            fnn.sweep(ENSEMBLE, "mse", opt, (X, Y), checkpoint_dir=tmp_path, **options)
    resumed = fnn.sweep(ENSEMBLE, "mse", opt, (X, Y), checkpoint_dir=tmp_path, resume=True,
                        **options)
    assert resumed.history == straight.history
    assert_identical(resumed.params, straight.params)
    assert resumed.table.columns() == straight.table.columns()
