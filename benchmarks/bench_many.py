"""Many models in one program against one fit per model (scikit-learn's digits, MLP 64-32-10).

- ensemble: ``fnn.fit_ensemble`` with 8 keys against 8 sequential ``fnn.fit`` calls
  (the same keys, so the same 8 models);
- sweep: ``fnn.sweep`` over 8 learning rates against 8 sequential ``fnn.fit`` calls
  with those learning rates (one key);
- cv: ``fnn.cross_validate`` with 5 folds against 5 sequential ``fnn.fit`` calls on the
  same splits.

Each variant is timed from the call to the end of training, after one untimed
warm-up call (so compilation is not timed; the compile count of the timed call is
reported: 0 means everything was reused). Variants alternate over ``--reps``
repetitions; reported: median seconds and sequential / one program.

    python benchmarks/bench_many.py [--reps 3] [--epochs 20] [--members 8] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import numpy as np

import fnn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from compile_events import programs_built  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    x, y = fnn.datasets.load_digits()
    x = np.asarray(x, np.float32) / 16.0
    y = np.asarray(y, np.int32)
    model = fnn.Sequential([fnn.Dense(32), fnn.Activation("relu"), fnn.Dense(10)])
    loss, opt = "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3)
    keys = jax.random.split(jax.random.key(0), args.members)
    options = dict(epochs=args.epochs, batch_size=args.batch_size, progress=False,
                   metrics=["accuracy"])

    def ensemble():
        result = fnn.fit_ensemble(model, loss, opt, (x, y), keys=keys, **options)
        jax.block_until_ready(result.params)

    def sequential():
        for key in keys:
            jax.block_until_ready(fnn.fit(model, loss, opt, (x, y), key=key, **options).params)

    rates = list(np.geomspace(1e-4, 1e-1, args.members))

    def one_sweep():
        result = fnn.sweep(model, loss, opt, (x, y), hyperparams={"learning_rate": rates},
                           key=keys[0], **options)
        jax.block_until_ready(result.params)

    def sequential_rates():
        for rate in rates:
            jax.block_until_ready(fnn.fit(model, loss, fnn.optim.adam(rate), (x, y),
                                          key=keys[0], **options).params)

    fold_key, fit_key = jax.random.split(keys[0])
    folds = fnn.train.kfold_indices(len(x), 5, key=fold_key)

    def one_cv():
        result = fnn.cross_validate(model, loss, opt, (x, y), k=5, key=keys[0], **options)
        jax.block_until_ready(result.params)

    def sequential_folds():
        for train, held in folds:
            jax.block_until_ready(fnn.fit(model, loss, opt, (x[train], y[train]), key=fit_key,
                                          validation_data=(x[held], y[held]),
                                          **options).params)

    pairs = {"ensemble": (ensemble, sequential), "sweep": (one_sweep, sequential_rates),
             "cv": (one_cv, sequential_folds)}
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} "
             f"cpus, {platform.processor() or platform.machine()}, jax {jax.__version__}, load "
             f"average {os.getloadavg()[0]:.1f}, {args.reps} reps",
             f"digits ({len(x)} examples), MLP 64-32-10, Adam, batch {args.batch_size}, "
             f"{args.epochs} epochs, {args.members} models",
             f"{'task':<10} {'one program s':>14} {'sequential s':>13} {'speed-up':>9} "
             f"{'compiles (timed call)':>22}"]
    for name, (together, apart) in pairs.items():
        together(), apart()                                     # compile both
        times = {"together": [], "apart": []}
        builds = []
        for rep in range(args.reps):
            order = [("together", together), ("apart", apart)]
            for label, fn in (order if rep % 2 == 0 else order[::-1]):
                with programs_built() as built:
                    start = time.perf_counter()
                    fn()
                    times[label].append(time.perf_counter() - start)
                if label == "together":
                    builds.append(len(built))
        t, a = statistics.median(times["together"]), statistics.median(times["apart"])
        lines.append(f"{name:<10} {t:>14.2f} {a:>13.2f} {a / t:>8.2f}x {max(builds):>22}")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                               "many.txt"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
