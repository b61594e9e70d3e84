"""A tuning worker on a shared study: ``tune_worker.py STORAGE N_TRIALS [HANG_AT]``.

Tunes the learning rate of a tiny MLP on fixed data in groups of 2 trials. With
``HANG_AT``, the worker prints "hang" and sleeps when it builds that trial (the test
kills it there, its trial left running). Prints "done" at the end."""

import sys
import time

import jax
import numpy as np

import fnn
from fnn.tuning import study as study_module

study_module.HEARTBEAT_SECONDS = 1
study_module.GRACE_SECONDS = 3


def main() -> None:
    storage, n_trials = sys.argv[1], int(sys.argv[2])
    hang_at = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] - x[:, 1:2]).astype(np.float32)

    def build(trial):
        lr = trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
        if trial.number == hang_at:
            print("hang", flush=True)
            time.sleep(300)
        return {"model": fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)]),
                "loss": "mse", "optimizer": fnn.optim.sgd(lr), "batch_size": 16}

    fnn.tune(build, (x, y), n_trials=n_trials, epochs=2, key=jax.random.key(0),
             storage=storage, study_name="shared", monitor="loss", group_size=2,
             progress=False)
    print("done", flush=True)


if __name__ == "__main__":
    main()
