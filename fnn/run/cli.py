"""``python -m fnn`` (and the ``fnn`` command): train from a config, show and compare runs.

    fnn train CONFIG.toml --run-dir DIR [--resume] [--no-progress] [--tensorboard]
    fnn tune CONFIG.toml --run-dir DIR [--trials N] [--storage URL] [--no-progress]
    fnn show RUN_DIR
    fnn compare RUN_DIR [RUN_DIR ...]

``train`` checks the whole config first (`fnn.run.config`): a bad one is
an error naming the key and its line, and nothing is trained or written. The
run directory then gets ``config.toml`` (the config as given),
``record.json`` (`fnn.run.record`), ``metrics.jsonl`` (one JSON object
per epoch), ``checkpoints/`` (every epoch, the newest 3 kept) and, when
matplotlib is installed, ``curves.png``; ``--tensorboard`` adds TensorBoard
event files in ``tensorboard/`` (`fnn.run.tensorboard`). ``--resume`` continues a run
directory from its newest checkpoint, bit for bit the uninterrupted run on
CPU (``fit(..., resume=True)``). ``tune`` runs an Optuna study over the
config's search spaces (`fnn.run.tune_command`); ``show`` prints a
study's best trials too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from typing import Sequence

from fnn.run import record
from fnn.run.terminal import fail, now
from fnn.run.config import ConfigError, build, parse




def train(config_path: str, run_dir: str, resume: bool, progress: bool,
          tensorboard: bool = False) -> int:
    """The ``train`` command; the exit status."""
    import jax

    import fnn
    try:
        config, text = parse(config_path)
        experiment = build(config_path, config, text)
    except ConfigError as error:
        return fail(str(error))
    saved_config = os.path.join(run_dir, "config.toml")
    if resume:
        if not os.path.exists(saved_config):
            return fail(f"--resume: {run_dir} is not a run directory (no config.toml)")
        with open(saved_config) as f:
            if f.read() != text:
                return fail(f"--resume: {config_path} differs from the config the run in "
                             f"{run_dir} was started with ({saved_config})")
    elif os.path.exists(run_dir) and os.listdir(run_dir):
        return fail(f"run directory {run_dir} is not empty; pass --resume to continue the "
                     f"run in it, or choose a new one")
    created = not os.path.exists(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    checkpoints = fnn.checkpoint.Manager(os.path.join(run_dir, "checkpoints"))
    history = None
    latest = checkpoints.latest() if resume else None
    if latest is not None:
        history = fnn.checkpoint.load(latest)["history"]
    record_path = os.path.join(run_dir, "record.json")
    info = record.read_json(record_path) if resume and os.path.exists(record_path) else {
        "config": experiment.config, "seed": experiment.config["seed"],
        "environment": record.environment(), "sessions": []}
    session = {"started": now(), "resumed_from_epoch": None if history is None
               else len(history.get("loss", [])) - 1}
    info["sessions"].append(session)
    if not resume:
        with open(saved_config, "w") as f:
            f.write(text)
    record.write_json(record_path, info)
    callbacks = [record.MetricsLog(os.path.join(run_dir, "metrics.jsonl"), history)]
    if tensorboard:
        from fnn.run.tensorboard import TensorBoardLog
        callbacks.append(TensorBoardLog(os.path.join(run_dir, "tensorboard")))
    start = time.perf_counter()
    try:
        result = fnn.fit(experiment.model, experiment.loss, experiment.optimizer,
                         experiment.data, key=jax.random.key(experiment.config["seed"]),
                         validation_data=experiment.validation_data, callbacks=callbacks,
                         checkpoint_dir=checkpoints, resume=resume, progress=progress,
                         **experiment.options)
    except (ValueError, TypeError) as error:
        if created and not checkpoints.epochs():     # nothing trained: leave nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        return fail(str(error))
    session.update(finished=now(), wall_seconds=round(time.perf_counter() - start, 3),
                   epochs=len(result.history["loss"]))
    info["final"] = {k: v[-1] for k, v in result.history.items()}
    record.write_json(record_path, info)
    _plot(run_dir, result.history)
    print(f"{run_dir}: {len(result.history['loss'])} epochs; " + ", ".join(
        f"{k} {v:.4g}" for k, v in info["final"].items() if k not in ("skipped",)))
    return 0


def _plot(run_dir: str, history: dict) -> None:
    """``curves.png``: loss and each metric per epoch, training and validation."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = [k for k in history if not k.startswith("val_") and k not in
             ("learning_rate", "skipped")]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(history[name], label="training")
        if "val_" + name in history:
            ax.plot(history["val_" + name], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(run_dir, "curves.png"), dpi=90)
    plt.close(fig)


def _load_run(run_dir: str) -> tuple[dict, list[dict]]:
    path = os.path.join(run_dir, "record.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir} is not a run directory (no record.json)")
    metrics = os.path.join(run_dir, "metrics.jsonl")
    return record.read_json(path), (record.read_metrics(metrics) if os.path.exists(metrics)
                                    else [])


def show(run_dir: str) -> int:
    """The ``show`` command: the record and the final metrics of one run."""
    try:
        info, epochs = _load_run(run_dir)
    except FileNotFoundError as error:
        return fail(str(error))
    env = info["environment"]
    git = env.get("git") or {}
    lines = [f"run        {run_dir}",
             f"config     {info['config'].get('description', '')}".rstrip(),
             f"seed       {info['seed']}",
             f"versions   fnn {env['fnn']}, jax {env['jax']}, jaxlib {env['jaxlib']}, "
             f"numpy {env['numpy']}, python {env['python']}",
             f"device     {env['backend']} ({env['device_kind']}, {env['device_count']})",
             f"xla_flags  {env['xla_flags'] or '(none)'}",
             f"git        {git.get('commit', '(not a git work tree)')}"
             + (" (uncommitted changes)" if git.get("dirty") else "")]
    for i, s in enumerate(info["sessions"]):
        resumed = ("" if s.get("resumed_from_epoch") is None
                   else f", resumed after epoch {s['resumed_from_epoch']}")
        lines.append(f"session {i}  {s['started']} -> {s.get('finished', 'not finished')}"
                     f" ({s.get('wall_seconds', '?')} s{resumed})")
    if epochs:
        last = epochs[-1]
        lines.append(f"epochs     {len(epochs)}")
        lines += [f"  {k:<18} {v:.6g}" for k, v in last.items() if k != "epoch"]
    study = info.get("tune")
    if study:
        from fnn.train.many.table import Table
        best = study["best"]
        lines.append(f"study      {study['study_name']} in {study['storage']}, "
                     f"{study['n_trials']} trials, {study['direction']} {study['monitor']}")
        if best is not None:
            lines.append(f"best       trial {best['trial']}: {study['monitor']} "
                         f"{best['value']:.6g} with {best['params']}")
        lines += ["best trials:"] + ["  " + line for line in str(Table(
            study["top"][:5])).splitlines()]
    print("\n".join(lines))
    return 0


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out[name] = " | ".join(",".join(f"{k}={v}" for k, v in item.items())
                                   for item in value)
        else:
            out[name] = value
    return out


def compare(run_dirs: Sequence[str]) -> int:
    """The ``compare`` command: the settings that differ and the final metrics, side by side."""
    runs = []
    for run_dir in run_dirs:
        try:
            runs.append((run_dir, *_load_run(run_dir)))
        except FileNotFoundError as error:
            return fail(str(error))
    configs = [_flatten(info["config"]) for _, info, _ in runs]
    keys = list(dict.fromkeys(k for c in configs for k in c))
    differing = [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
    metrics = list(dict.fromkeys(k for _, _, e in runs if e for k in e[-1] if k != "epoch"))
    rows = [("run", [os.path.basename(os.path.normpath(r)) for r, _, _ in runs])]
    rows += [(k, [str(c.get(k, "")) for c in configs]) for k in differing]
    rows.append(("epochs", [str(len(e)) for _, _, e in runs]))
    rows += [(m, [f"{e[-1][m]:.4g}" if e and m in e[-1] else "" for _, _, e in runs])
             for m in metrics]
    width = max(len(name) for name, _ in rows)
    cols = [max(len(row[1][i]) for row in rows) for i in range(len(runs))]
    for name, values in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(values, cols)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; the exit status."""
    parser = argparse.ArgumentParser(prog="fnn", description="Train fnn models from configs.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train the model a TOML config describes")
    p.add_argument("config")
    p.add_argument("--run-dir", required=True, help="the run directory to write")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write the metrics as TensorBoard event files (DIR/tensorboard)")
    p = commands.add_parser("tune", help="tune the search spaces of a TOML config (Optuna)")
    p.add_argument("config")
    p.add_argument("--run-dir", required=True, help="the study's directory (study.db, "
                                                    "best.toml, record.json)")
    p.add_argument("--trials", type=int, help="the study's total of finished trials "
                                              "(default: [tune] trials)")
    p.add_argument("--storage", help="an Optuna storage URL instead of DIR/study.db, e.g. "
                                     "postgresql://user@host/db shared by several workers")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p = commands.add_parser("show", help="print a run's record and final metrics")
    p.add_argument("run_dir")
    p = commands.add_parser("compare", help="print runs side by side")
    p.add_argument("run_dirs", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "train":
        return train(args.config, args.run_dir, args.resume, not args.no_progress,
                     args.tensorboard)
    if args.command == "tune":
        from fnn.run.tune_command import tune
        return tune(args.config, args.run_dir, args.trials, args.storage, not args.no_progress)
    if args.command == "show":
        return show(args.run_dir)
    return compare(args.run_dirs)
