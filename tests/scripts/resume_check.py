"""Trains a small dropout + BatchNorm model with a learning-rate schedule and early stopping,
checkpointing every epoch to argv[1]. argv[2]: "kill E" (SIGKILL itself at the end of epoch E,
after epoch E-1's checkpoint), "resume" (continue from the newest checkpoint), or "whole" (no
checkpoints). The finished run is saved to argv[3]."""

import os
import signal
import sys

import jax
import numpy as np

import fnn


def main() -> None:
    run_dir, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] + 0.3 * rng.normal(size=60) > 0).astype(np.int32)
    model = fnn.Sequential([fnn.Dense(16), fnn.BatchNorm(), fnn.Activation("relu"),
                            fnn.Dropout(0.3), fnn.Dense(2)])
    schedule = fnn.optim.cosine_decay(0.05, 60)
    options = dict(epochs=16, batch_size=16, key=jax.random.key(7), progress=False,
                   metrics=["accuracy"], validation_data=(x[:20], y[:20]),
                   early_stopping=fnn.EarlyStopping("val_loss", patience=1))
    callbacks = []
    if mode.startswith("kill"):
        at = int(mode.split()[1])
        callbacks = [lambda epoch, logs: epoch == at and os.kill(os.getpid(), signal.SIGKILL)]
    if mode != "whole":
        options.update(checkpoint_dir=run_dir, resume=mode == "resume")
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(schedule), (x, y),
                     callbacks=callbacks, **options)
    fnn.checkpoint.save(out, result)


if __name__ == "__main__":
    main()
