"""Callbacks that act: ReduceLROnPlateau and LearningRateScheduler change the traced learning
rate between epochs (no recompilation; the same numbers as the schedule written into the
optimizer), ModelCheckpoint keeps the best, Control.stop stops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 3)).astype(np.float32)
Y = (X[:, :1] - 2 * X[:, 1:2]).astype(np.float32)
MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)])
OPTIONS = dict(batch_size=16, key=jax.random.key(1), progress=False)


def test_an_epoch_indexed_learning_rate_equals_the_same_schedule_in_the_optimizer():
    steps = 3                                           # 48 examples, batch 16
    by_callback = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.1), (X, Y), epochs=4,
                          callbacks=[fnn.train.LearningRateScheduler(
                              lambda epoch: 0.1 * 0.5 ** epoch)], **OPTIONS)
    in_optimizer = fnn.fit(MODEL, "mse", fnn.optim.sgd(
        lambda count: 0.1 * 0.5 ** (count // steps).astype(jnp.float32)), (X, Y), epochs=4,
        **OPTIONS)
    assert by_callback.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    assert by_callback.history["loss"] == in_optimizer.history["loss"]
    jax.tree.map(np.testing.assert_array_equal, by_callback.params, in_optimizer.params)


def test_reduce_on_plateau_halves_the_rate_without_compiling_again():
    def run():
        rule = fnn.train.ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10.0)
        result = fnn.fit(MODEL, "mse", fnn.optim.adam(0.01), (X, Y), epochs=4,
                         callbacks=[rule], **OPTIONS)
        return rule, result
    run()
    with programs_built() as built:
        rule, result = run()
    assert built == []                      # new learning rates, same compiled epoch
    # min_delta=10: no epoch counts as an improvement after the first
    assert result.history["learning_rate"] == pytest.approx([0.01, 0.01, 0.005, 0.0025])
    assert [epoch for epoch, _ in rule.reductions] == [1, 2, 3]


def test_model_checkpoint_keeps_the_best_and_control_stops(tmp_path):
    class StopAt(fnn.train.Callback):
        def on_epoch_end(self, epoch, logs, control):
            if epoch == 3:
                control.stop()

    saver = fnn.train.ModelCheckpoint(str(tmp_path), monitor="val_loss", save_best_only=True)
    result = fnn.fit(MODEL, "mse", fnn.optim.adam(0.05), (X, Y), epochs=10,
                     validation_data=(X[:16], Y[:16]), callbacks=[saver, StopAt()], **OPTIONS)
    assert len(result.history["loss"]) == 4
    best = int(np.argmin(result.history["val_loss"]))
    assert saver.manager.best_epoch() == best
    saved = fnn.checkpoint.load(saver.manager.path(best), like={
        "params": result.params, "state": result.state, "opt_state": result.opt_state})
    assert fnn.checkpoint.info(saver.manager.path(best)).metrics["val_loss"] == \
        result.history["val_loss"][best]
    assert jax.tree.structure(saved["params"]) == jax.tree.structure(result.params)


def test_callback_errors_are_clear():
    with pytest.raises(ValueError, match="factor must be in"):
        fnn.train.ReduceLROnPlateau(factor=2.0)
    with pytest.raises(ValueError, match="monitors 'val_loss', which the history does not"):
        fnn.fit(MODEL, "mse", fnn.optim.sgd(0.1), (X, Y), epochs=2,
                callbacks=[fnn.train.ReduceLROnPlateau()], **OPTIONS)
    with pytest.raises(TypeError, match="callbacks must be functions"):
        fnn.fit(MODEL, "mse", fnn.optim.sgd(0.1), (X, Y), epochs=1, callbacks=[3], **OPTIONS)
