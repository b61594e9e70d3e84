"""Experiments described by a TOML file: parsed, fully checked, then built into fit's arguments.

A config names everything a run needs (``examples/configs/`` has three)::

    seed = 0
    epochs = 20
    batch_size = 32
    loss = "sparse_softmax_cross_entropy"
    metrics = ["accuracy"]
    validation_split = 0.2          # the last 20% of the examples, held out before shuffling

    [data]
    name = "digits"                 # digits | breast_cancer | diabetes
    images = false                  # digits as 8x8x1 images (for a CNN)
    standardize = false             # standardise with the training part's statistics

    [[model.layers]]
    type = "Dense"
    features = 32
    [[model.layers]]
    type = "Activation"
    fn = "relu"

    [optimizer]
    name = "adam"                   # any fnn.optim factory, with its arguments
    learning_rate = 0.001

    [schedule]                      # optional: replaces the optimizer's learning_rate
    name = "cosine_decay"
    lr0 = 0.01
    decay_steps = 1000

    [early_stopping]                # optional: fnn.EarlyStopping's arguments
    monitor = "val_loss"
    patience = 5

    [monitor]                       # optional: fnn.train.Monitor's arguments (gradient
    every = 1                       # norms, dead units, ... in the history and TensorBoard)

Every key is checked before anything is built or trained: an unknown key, a
wrong type, an unknown layer, optimizer, schedule, loss, metric or dataset is
a `ConfigError` that names the key, its line in the file when it can
be found, and the allowed values.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from typing import Any, Callable, NamedTuple

import numpy as np

DATASETS = ("digits", "breast_cancer", "diabetes")
TOP_KEYS = {"seed": int, "epochs": int, "batch_size": int, "loss": str, "metrics": list,
            "validation_split": float, "data": dict, "model": dict, "optimizer": dict,
            "schedule": dict, "early_stopping": dict, "monitor": dict, "description": str,
            "tune": dict}
REQUIRED = ("seed", "epochs", "batch_size", "loss", "data", "model", "optimizer")
DATA_KEYS = {"name": str, "images": bool, "standardize": bool}
MODEL_KEYS = {"layers": list, "units": list, "activation": str, "outputs": int,
              "dropout": float}
TUNE_KEYS = {"trials": int, "monitor": str, "direction": str, "pruner": str, "sampler": str,
             "group_size": int, "study_name": str}
"""``[tune]``: read by ``fnn tune`` only (`fnn.tuning.space`, `fnn.run.tune_command`)."""


class ConfigError(ValueError):
    """A config that cannot describe a run; the message names the key and its line."""


class Experiment(NamedTuple):
    """A checked config, built: what ``fnn.fit`` is called with."""

    config: dict
    model: Any
    loss: str
    optimizer: Any
    data: tuple
    validation_data: tuple | None
    options: dict


def _line(text: str, key: str, section: str | None, table: int | None = None) -> str:
    """`` (line N)`` of ``key = ...`` (under ``[section]`` when given; in its ``table``-th
    ``[[section]]`` for arrays of tables), or ``""``."""
    current, seen = None, -1
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            current = header.group(1)
            seen += current == section
            if section is None and key == current:
                return f" (line {number})"
            continue
        if re.match(rf"^{re.escape(key)}\s*=", line) and (
                section is None and current is None
                or section == current and (table is None or seen == table)):
            return f" (line {number})"
    return ""


def _type_name(kind: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            list: "a list", dict: "a table"}.get(kind, str(kind))


class Checker:
    """Raises `ConfigError` with the file's line numbers."""

    def __init__(self, path: str, text: str):
        self.path, self.text = path, text

    def fail(self, key: str, section: str | None, message: str,
             table: int | None = None) -> None:
        where = f"{section}.{key}" if section else key
        raise ConfigError(f"{self.path}: {where}{_line(self.text, key, section, table)}: "
                          f"{message}")

    def keys(self, table: dict, allowed: dict, section: str | None) -> None:
        for key, value in table.items():
            if key not in allowed:
                self.fail(key, section, f"unknown key; allowed: {', '.join(sorted(allowed))}")
            kind = allowed[key]
            if kind is None:
                continue
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  if kind is float else isinstance(value, kind)
                  and not (kind is int and isinstance(value, bool)))
            if not ok:
                self.fail(key, section, f"must be {_type_name(kind)}, got {value!r}")


def _factory_arguments(fn: Callable) -> dict:
    return {name: None for name, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _named(check: Checker, table: dict, section: str, module: Any, kinds: str,
           names: list[str]) -> tuple[Callable, dict]:
    """A ``{name = ..., args...}`` table's function and arguments, checked."""
    if "name" not in table:
        check.fail("name", section, f"missing; one of: {', '.join(names)}")
    name = table["name"]
    if name not in names:
        check.fail("name", section, f"unknown {kinds} {name!r}; one of: {', '.join(names)}")
    fn = getattr(module, name)
    args = {k: v for k, v in table.items() if k != "name"}
    allowed = _factory_arguments(fn)
    for key in args:
        if key not in allowed:
            check.fail(key, section, f"{name} takes no argument {key!r}; it takes: "
                                     f"{', '.join(allowed) or 'none'}")
    return fn, args


def _optimizer_names() -> list[str]:
    import fnn
    factories = ("sgd", "momentum", "rmsprop", "adagrad", "adadelta", "adam", "adamw",
                 "nadam", "lion")
    return [n for n in factories if hasattr(fnn.optim, n)]


def _schedule_names() -> list[str]:
    import fnn
    return sorted(n for n in dir(fnn.optim.schedules) if not n.startswith("_")
                  and n not in ("Schedule", "constant") and callable(
                      getattr(fnn.optim.schedules, n)) and n.islower()
                  and hasattr(fnn.optim, n))


def _layer_names() -> list[str]:
    import fnn
    skip = {"Layer", "ParameterFreeLayer", "FunctionLayer", "Sequential", "Parallel",
            "Residual", "Bidirectional", "EncoderDecoder"}
    return sorted(n for n in dir(fnn.layers) if n[:1].isupper() and n not in skip
                  and dataclasses.is_dataclass(getattr(fnn.layers, n)))


def _mlp(check: Checker, model: dict) -> Any:
    """The ``[model]`` shorthand: ``units`` hidden Dense layers with ``activation`` (and
    ``dropout``), then ``Dense(outputs)``."""
    import fnn
    if "layers" in model:
        check.fail("units", "model", "give either [[model.layers]] or units/activation/"
                                     "outputs, not both")
    units = model["units"]
    if not all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in units):
        check.fail("units", "model", f"must be a list of positive integers (hidden layer "
                                     f"widths), got {units!r}")
    if "outputs" not in model:
        check.fail("units", "model", "with units, give outputs (the last layer's width: "
                                     "10 for digits with softmax cross-entropy)")
    try:
        activation = fnn.Activation(model.get("activation", "relu"))
    except (TypeError, ValueError) as error:
        check.fail("activation", "model", str(error))
    rate = model.get("dropout", 0.0)
    if not 0 <= rate < 1:
        check.fail("dropout", "model", f"must be in [0, 1), got {rate!r}")
    layers = []
    for width in units:
        layers += [fnn.Dense(width), activation] + ([fnn.Dropout(rate)] if rate else [])
    return fnn.Sequential(layers + [fnn.Dense(model["outputs"])])


def _build_layers(check: Checker, model: dict) -> Any:
    import fnn
    check.keys(model, MODEL_KEYS, "model")
    if "units" in model:
        return _mlp(check, model)
    for key in ("activation", "outputs", "dropout"):
        if key in model:
            check.fail(key, "model", "goes with units (the MLP shorthand); with "
                                     "[[model.layers]] give each layer's arguments")
    layers = model.get("layers")
    if not layers:
        check.fail("layers", "model", "needs at least one layer: [[model.layers]] tables "
                                      "with a type and the layer's arguments, or units, "
                                      "activation and outputs for an MLP")
    names = _layer_names()
    built = []
    for i, spec in enumerate(layers):
        section = "model.layers"
        if not isinstance(spec, dict) or "type" not in spec:
            check.fail("type", section, f"layer {i} needs a type; one of: {', '.join(names)}",
                       i)
        kind = spec["type"]
        if kind not in names:
            check.fail("type", section, f"layer {i}: unknown layer {kind!r}; one of: "
                                        f"{', '.join(names)}", i)
        cls = getattr(fnn.layers, kind)
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items()
                if k != "type"}
        for key in args:
            if key not in fields:
                check.fail(key, section, f"layer {i} ({kind}) takes no argument {key!r}; it "
                                         f"takes: {', '.join(sorted(fields))}", i)
        try:
            built.append(cls(**args))
        except (TypeError, ValueError) as error:
            check.fail("type", section, f"layer {i} ({kind}): {error}", i)
    return fnn.Sequential(built)


def _load_data(check: Checker, data: dict, split: float | None) -> tuple[tuple, tuple | None]:
    import fnn
    check.keys(data, DATA_KEYS, "data")
    name = data.get("name")
    if name not in DATASETS:
        check.fail("name", "data", f"unknown dataset {name!r}; one of: {', '.join(DATASETS)}")
    if data.get("images") and name != "digits":
        check.fail("images", "data", "only the digits dataset has images")
    if name == "digits":
        x, y = fnn.datasets.load_digits(images=bool(data.get("images", False)))
    else:
        x, y = getattr(fnn.datasets, f"load_{name}")()
    if not split:
        train, held_out = (x, y), None
    else:       # fit's own rule: the last fraction, before any shuffling
        from fnn.train.data.splits import split_off_validation
        try:
            train, held_out = split_off_validation(x, y, split, None)
        except ValueError as error:
            check.fail("validation_split", None, str(error))
    if data.get("standardize"):
        scaler = fnn.preprocessing.fit_standardizer(train[0])
        train = (np.asarray(scaler.transform(train[0])), train[1])
        if held_out is not None:
            held_out = (np.asarray(scaler.transform(held_out[0])), held_out[1])
    return train, held_out


def parse(path: str) -> tuple[dict, str]:
    """The TOML at ``path`` as a dict, and its text (for line numbers)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def build(path: str, config: dict | None = None, text: str = "",
          load_data: bool = True) -> Experiment:
    """Check every key of the config at ``path`` (or the given ``config``), then build it.

    ``load_data=False`` checks ``[data]`` but leaves the data out (``data`` and
    ``validation_data`` are ``None``): ``fnn tune`` builds each trial's model and
    optimizer this way and loads the data once.

    Raises:
      ConfigError: the first problem, naming the key, its line and the allowed values.
    """
    import fnn
    if config is None:
        config, text = parse(path)
    check = Checker(path, text)
    from fnn.tuning import space
    spaces = space.find(config)
    if spaces:
        where = next(iter(spaces))
        check.fail(str(where[-1]), ".".join(str(p) for p in where[:-1]
                                          if not isinstance(p, int)) or None,
                   "is a search space; run this config with `fnn tune`, which samples it")
    check.keys(config, TOP_KEYS, None)
    if "tune" in config:
        check.keys(config["tune"], TUNE_KEYS, "tune")
    for key in REQUIRED:
        if key not in config:
            check.fail(key, None, "missing (required: " + ", ".join(REQUIRED) + ")")
    for key in ("seed", "epochs", "batch_size"):
        if config[key] < (0 if key == "seed" else 1):
            check.fail(key, None, f"must be {'>= 0' if key == 'seed' else '>= 1'}, got "
                                  f"{config[key]}")
    split = config.get("validation_split")
    if split is not None and not 0 < split < 1:
        check.fail("validation_split", None, f"must be in (0, 1), got {split}")
    try:
        fnn.losses.get(config["loss"])
    except ValueError as error:
        check.fail("loss", None, str(error))
    metrics = config.get("metrics", [])
    for metric in metrics:
        try:
            fnn.metrics.get(metric)
        except (ValueError, TypeError) as error:
            check.fail("metrics", None, str(error))
    model = _build_layers(check, config["model"])
    opt_fn, opt_args = _named(check, config["optimizer"], "optimizer", fnn.optim, "optimizer",
                              _optimizer_names())
    if "schedule" in config:
        sched_fn, sched_args = _named(check, config["schedule"], "schedule", fnn.optim,
                                      "schedule", _schedule_names())
        try:
            opt_args["learning_rate"] = sched_fn(**sched_args)
        except (TypeError, ValueError) as error:
            check.fail("name", "schedule", str(error))
    try:
        optimizer = opt_fn(**opt_args)
    except (TypeError, ValueError) as error:
        check.fail("name", "optimizer", str(error))
    stopping = None
    if "early_stopping" in config:
        try:
            stopping = fnn.EarlyStopping(**config["early_stopping"])
        except (TypeError, ValueError) as error:
            check.fail("monitor", "early_stopping", str(error))
        if stopping.monitor.startswith("val_") and not split:
            check.fail("monitor", "early_stopping", f"{stopping.monitor!r} needs "
                                                    f"validation_split")
    monitor = None
    if "monitor" in config:
        try:
            monitor = fnn.train.Monitor(**config["monitor"])
        except (TypeError, ValueError) as error:
            check.fail(next(iter(config["monitor"]), "monitor"), "monitor", str(error))
    if load_data:
        data, validation = _load_data(check, config["data"], split)
    else:
        check.keys(config["data"], DATA_KEYS, "data")
        data = validation = None
    options = {"epochs": config["epochs"], "batch_size": config["batch_size"],
               "metrics": list(metrics), "early_stopping": stopping, "monitor": monitor}
    return Experiment(config, model, config["loss"], optimizer, data, validation, options)
