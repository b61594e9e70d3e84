"""``fnn tune CONFIG.toml --run-dir DIR [--trials N] [--storage URL]``: a study from a config.

The config is a ``fnn train`` config whose values may be search spaces
(`fnn.tuning.space`), with an optional ``[tune]`` table::

    [tune]
    trials = 32              # the study's total of finished trials (--trials overrides)
    monitor = "val_loss"     # default: val_loss with validation_split, else loss
    direction = "minimize"   # default: what the monitor's name says
    pruner = "median"        # median | successive_halving | hyperband | none
    sampler = "tpe"          # tpe | random (both seeded with the config's seed)
    group_size = 16          # trials trained together (default: from memory)
    study_name = "digits"    # default: the config file's name

Everything is checked before anything trains, as ``fnn train`` checks
(errors name the key and its line). The run directory gets ``config.toml``
(as given), ``study.db`` (the Optuna study, in SQLite; ``--storage URL``
puts it in another database instead, e.g. PostgreSQL shared by workers on
several machines), ``best.toml`` (the best trial's configuration: a runnable
``fnn train`` config) and ``record.json``. Running the same command again
continues the study (``n_trials`` counts the study's finished trials, so
several workers started with the same command share the work);
``fnn show DIR`` prints the best trials.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fnn.run import record
from fnn.run.terminal import fail, now
from fnn.run.config import TUNE_KEYS, ConfigError, Checker, build, parse
from fnn.run.toml_writer import dumps

PRUNERS = ("median", "successive_halving", "hyperband", "none")
SAMPLERS = ("tpe", "random")




def _options(check: Any, config: dict, experiment: Any, trials: int | None,
             config_path: str) -> dict:
    """The ``[tune]`` table (and ``--trials``), checked."""
    from fnn.train.loop.early_stopping import monitor_mode
    table = config.get("tune", {})
    check.keys(table, TUNE_KEYS, "tune")
    n_trials = trials if trials is not None else table.get("trials")
    if n_trials is None:
        check.fail("tune", None, "how many trials? give [tune] trials = N or --trials N")
    if n_trials < 1:
        check.fail("trials", "tune", f"must be >= 1, got {n_trials}")
    monitor = table.get("monitor", "val_loss" if experiment.validation_data is not None
                        else "loss")
    direction = table.get("direction")
    if direction is None:
        try:
            direction = "minimize" if monitor_mode("tune", monitor) == "min" else "maximize"
        except ValueError as error:
            check.fail("monitor", "tune", f"{error}; give direction")
    if direction not in ("minimize", "maximize"):
        check.fail("direction", "tune", f"must be 'minimize' or 'maximize', got {direction!r}")
    pruner = table.get("pruner", "median")
    if pruner not in PRUNERS:
        check.fail("pruner", "tune", f"unknown pruner {pruner!r}; one of: {', '.join(PRUNERS)}")
    sampler = table.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        check.fail("sampler", "tune", f"unknown sampler {sampler!r}; one of: "
                                      f"{', '.join(SAMPLERS)}")
    if "early_stopping" in config:
        check.fail("early_stopping", None, "fnn tune scores each trial by its best epoch and "
                                           "prunes bad trials; remove [early_stopping] "
                                           "(best.toml can have it back)")
    group_size = table.get("group_size")
    if group_size is not None and group_size < 1:
        check.fail("group_size", "tune", f"must be >= 1, got {group_size}")
    name = table.get("study_name") or os.path.splitext(os.path.basename(config_path))[0]
    return {"n_trials": n_trials, "monitor": monitor, "direction": direction,
            "pruner": pruner, "sampler": sampler, "group_size": group_size,
            "study_name": name}


def _pruner(name: str) -> Any:
    import optuna
    return {"median": optuna.pruners.MedianPruner, "none": optuna.pruners.NopPruner,
            "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner}[name]()


def _sampler(name: str, seed: int) -> Any:
    import optuna
    return (optuna.samplers.TPESampler(seed=seed) if name == "tpe"
            else optuna.samplers.RandomSampler(seed=seed))


def tune(config_path: str, run_dir: str, trials: int | None, storage: str | None,
         progress: bool) -> int:
    """The ``tune`` command; the exit status."""
    import jax

    import fnn
    from fnn.tuning import space
    try:
        from fnn.tuning.study import optuna_module
        optuna = optuna_module()
    except ImportError as error:
        return fail(str(error))
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # fnn prints the table
    try:
        config, text = parse(config_path)
        check = Checker(config_path, text)
        spaces = space.find(config)
        if not spaces:
            raise ConfigError(f"{config_path}: no search space to tune: write a value as "
                              "{log_uniform = [1e-4, 1e-1]}, {choice = [...]}, ... "
                              "(docs/tune.md), or train it with `fnn train`")
        space.check(spaces, check.fail)
        base = space.resolve(config, spaces, lambda path, s: space.first(s))
        experiment = build(config_path, base, text)       # every other key, and the data
        options = _options(check, config, experiment, trials, config_path)
    except ConfigError as error:
        return fail(str(error))
    saved = os.path.join(run_dir, "config.toml")
    if os.path.exists(saved):
        with open(saved) as f:
            if f.read() != text:
                return fail(f"{run_dir} holds a study of another config ({saved}); choose "
                             f"a new --run-dir, or run the same config to continue it")
    elif os.path.exists(run_dir) and os.listdir(run_dir):
        return fail(f"run directory {run_dir} is not empty and holds no study")
    os.makedirs(run_dir, exist_ok=True)
    with open(saved, "w") as f:
        f.write(text)

    def build_trial(trial):
        concrete = space.resolve(config, spaces,
                                 lambda path, s: space.suggest(trial, path, s))
        try:
            e = build(config_path, concrete, text, load_data=False)
        except ConfigError as error:      # a sampled value the layer refuses: the trial fails
            raise ValueError(str(error)) from None
        return {"model": e.model, "loss": e.loss, "optimizer": e.optimizer,
                "batch_size": e.options["batch_size"], "metrics": e.options["metrics"]}

    record_path = os.path.join(run_dir, "record.json")
    info = record.read_json(record_path) if os.path.exists(record_path) else {
        "config": config, "seed": config["seed"], "environment": record.environment(),
        "sessions": []}
    session = {"started": now(), "command": "tune"}
    info["sessions"].append(session)
    record.write_json(record_path, info)
    start = time.perf_counter()
    try:
        result = fnn.tune(
            build_trial, experiment.data, n_trials=options["n_trials"],
            epochs=config["epochs"], key=jax.random.key(config["seed"]), storage=storage,
            run_dir=run_dir, study_name=options["study_name"],
            direction=options["direction"], monitor=options["monitor"],
            validation_data=experiment.validation_data,
            pruner=_pruner(options["pruner"]),
            sampler=_sampler(options["sampler"], config["seed"]),
            group_size=options["group_size"], progress=progress)
    except (ValueError, TypeError) as error:
        return fail(str(error))
    session.update(finished=now(), wall_seconds=round(time.perf_counter() - start, 3))
    best = result.best_trial
    info["tune"] = {"storage": storage or "sqlite:///" + os.path.abspath(
        os.path.join(run_dir, "study.db")), "study_name": options["study_name"],
        "n_trials": options["n_trials"], "monitor": options["monitor"],
        "direction": options["direction"],
        "best": None if best is None else {"trial": best.number, "value": best.value,
                                           "params": best.params},
        "top": result.table.rows[:10]}
    record.write_json(record_path, info)
    if best is None:
        print(result.table)
        return fail("no trial completed; see the errors in the table above")
    values = space.fixed_params(best.params, spaces)
    concrete = space.resolve(config, spaces, lambda path, s: values[space.name(path)])
    concrete.pop("tune", None)
    with open(os.path.join(run_dir, "best.toml"), "w") as f:
        f.write(f"# the best trial ({best.number}) of the study {options['study_name']!r} of "
                f"{config_path}: {options['monitor']} {best.value:.6g}\n" + dumps(concrete))
    lines = str(result.table).splitlines()
    print("\n".join(lines[:11]) + (f"\n... ({len(lines) - 1} trials)" if len(lines) > 11
                                    else ""))
    print(f"{run_dir}: best trial {best.number}, {options['monitor']} {best.value:.4g}; its "
          f"config: {os.path.join(run_dir, 'best.toml')} (fnn train it)")
    return 0
