"""fnn.tune against a plain Optuna loop that calls fnn.fit once per trial.

The issue's workload: 32 trials over the learning rate (log-uniform 1e-4..1e-1),
AdamW's weight decay (log-uniform 1e-5..1e-1) and two hidden widths (32, 64)
of an MLP 64-w-10 on scikit-learn's digits (standardised, the last 20% held
out for validation), 10 epochs of mini-batches of 32, every trial from the
same key, scored by its best epoch's ``val_loss``. Both sides use Optuna's
``RandomSampler`` with the same seed and no pruner, so they ask for the same
trials in the same order; the script checks that every trial got the same
parameters, counts the trials whose values agree to 1e-5 (a vmapped program
sums in another order than a single one: a run at a learning rate high
enough to be chaotic amplifies that difference, and the script lists
those), then reports the times:

- ``optuna + fit``: ``study.optimize(objective, n_trials=32)``, the objective
  calling ``fnn.fit`` (its compiled programs are reused across trials: a
  fresh but equal optimizer builds nothing new);
- ``fnn.tune``: ``fnn.tune(build, ...)``, the trials asked in batches and
  each batch's trials of one width trained as one vmapped program (on a CPU,
  one thread per core).

Each side runs once untimed (compilation), then ``--reps`` timed runs in
alternation, each on a fresh in-memory study. Goal: fnn.tune at least 2x
faster on this CPU.

    python benchmarks/bench_tune.py [--reps 3] [--trials 32] [--epochs 10] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np
import optuna

import fnn

WIDTHS = (32, 64)
MODELS = {w: fnn.Sequential([fnn.Dense(w), fnn.Activation("relu"), fnn.Dense(10)])
          for w in WIDTHS}


def build(trial):
    lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    decay = trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True)
    width = trial.suggest_categorical("width", list(WIDTHS))
    return {"model": MODELS[width], "loss": "sparse_softmax_cross_entropy",
            "optimizer": fnn.optim.adamw(lr, weight_decay=decay), "batch_size": 32}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    x, y = fnn.datasets.load_digits()
    x = np.asarray(x, np.float32)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    key = jax.random.key(0)

    def plain():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                    pruner=optuna.pruners.NopPruner())

        def objective(trial):
            config = build(trial)
            result = fnn.fit(config["model"], config["loss"], config["optimizer"], (x, y),
                             epochs=args.epochs, batch_size=config["batch_size"], key=key,
                             validation_split=0.2, progress=False)
            return min(result.history["val_loss"])
        study.optimize(objective, n_trials=args.trials)
        return study

    def tuned():
        return fnn.tune(build, (x, y), n_trials=args.trials, epochs=args.epochs, key=key,
                        validation_split=0.2, sampler=optuna.samplers.RandomSampler(seed=0),
                        pruner=optuna.pruners.NopPruner(), progress=False).study

    variants = {"optuna + fit": plain, "fnn.tune": tuned}
    first, studies = {}, {}
    for name, run in variants.items():
        start = time.perf_counter()
        studies[name] = run()
        first[name] = time.perf_counter() - start
    a, b = ([(t.number, t.params, t.value) for t in studies[name].trials] for name in variants)
    same_params = [p for _, p, _ in a] == [p for _, p, _ in b]
    gaps = [abs(u - v) / max(abs(u), 1e-12) for (_, _, u), (_, _, v) in zip(a, b)]
    close = sum(g <= 1e-5 for g in gaps)
    apart = [(params["learning_rate"], g) for (_, params, _), g in zip(a, gaps) if g > 1e-5]
    times = {name: [] for name in variants}
    for rep in range(args.reps):
        for name in (list(variants) if rep % 2 == 0 else list(reversed(variants))):
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    groups = sorted({t.user_attrs["group"].split(":")[0] for t in studies["fnn.tune"].trials})
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
             f"{os.cpu_count()} cpus, {platform.processor() or platform.machine()}, jax "
             f"{jax.__version__}, optuna {optuna.__version__}, load average "
             f"{os.getloadavg()[0]:.1f}, {args.reps} reps",
             f"{args.trials} trials (learning rate x weight decay x width {WIDTHS}), MLP "
             f"64-w-10 on digits, AdamW, {args.epochs} epochs of batch 32, RandomSampler(seed=0)",
             f"the same trials: {same_params}; values equal to 1e-5 (relative): {close} of "
             f"{len(gaps)}" + ("" if not apart else "; the others (learning rate, relative "
                               "difference): " + ", ".join(f"({lr:.3g}, {g:.1e})"
                                                           for lr, g in apart)),
             f"fnn.tune's groups: {'; '.join(groups)}",
             f"{'variant':<16} {'median s':>9} {'min s':>9} {'first run s':>12}"]
    for name in variants:
        lines.append(f"{name:<16} {statistics.median(times[name]):>9.2f} "
                     f"{min(times[name]):>9.2f} {first[name]:>12.2f}")
    speedup = statistics.median(times["optuna + fit"]) / statistics.median(times["fnn.tune"])
    lines.append(f"speed-up of fnn.tune over optuna + fit: {speedup:.2f}x (medians); goal >= 2")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "tune.txt")
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
