"""Search spaces written in a ``fnn train`` TOML config, for the ``fnn tune`` command.

Any value of the config's model, optimizer, schedule, loss, metrics, batch
size or monitor tables may be replaced by a one-key table saying how to
sample it (the parameter is named by the value's dotted path):

    batch_size = {choice = [32, 64]}

    [model]
    units = {choice = [[64], [128, 64]]}      # hidden layers of an MLP
    activation = {choice = ["relu", "tanh"]}
    outputs = 10

    [optimizer]
    name = {choice = ["adam", "sgd"]}
    learning_rate = {log_uniform = [1e-4, 1e-1]}

The kinds: ``uniform = [low, high]`` and ``log_uniform = [low, high]``
(``trial.suggest_float``, ``log=True`` for the second; ``low > 0`` there),
``int = [low, high]`` and ``log_int = [low, high]`` (``trial.suggest_int``,
both ends included), ``choice = [v, ...]`` (``trial.suggest_categorical``;
lists among the choices are offered to Optuna as their JSON text, e.g.
``"[128, 64]"``). ``seed``, ``epochs``, ``validation_split``, ``[data]``
and ``[tune]`` are the same for every trial and take no search space.
"""

from __future__ import annotations

import copy
import json
from typing import Any

KINDS = ("uniform", "log_uniform", "int", "log_int", "choice")
FIXED = ("seed", "epochs", "validation_split", "data", "tune", "description")


def is_space(value: Any) -> bool:
    """Whether ``value`` is a search-space table (one key, among `KINDS`)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS


def find(config: Any, path: tuple = ()) -> dict[tuple, dict]:
    """``{path: space}`` of every search space in ``config`` (paths of keys and list indices)."""
    found = {}
    if is_space(config):
        return {path: config}
    if isinstance(config, dict):
        for key, value in config.items():
            found.update(find(value, path + (key,)))
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found.update(find(value, path + (i,)))
    return found


def name(path: tuple) -> str:
    """The parameter's name: its dotted path (``"model.layers.0.features"``)."""
    return ".".join(str(part) for part in path)


def check(spaces: dict[tuple, dict], fail: Any) -> None:
    """Check every space; ``fail(key, section, message)`` raises (naming the key's line).

    Raises:
      Exception: whatever ``fail`` raises, for a space where the config allows none or a
        kind with the wrong values (not two numbers, low >= high, a log range through 0,
        an empty choice).
    """
    for path, space in spaces.items():
        key = str(path[-1]) if not isinstance(path[-1], int) else str(path[-2])
        section = ".".join(str(p) for p in path[:-1] if not isinstance(p, int)) or None
        if isinstance(path[-1], int):
            section = ".".join(str(p) for p in path[:-2] if not isinstance(p, int)) or None
        if path[0] in FIXED:
            fail(key, section, f"{name(path)} is the same for every trial and takes no "
                               "search space")
        (kind, values), = space.items()
        if kind == "choice":
            if not isinstance(values, list) or not values:
                fail(key, section, f"choice must be a non-empty list, got {values!r}")
            continue
        numbers = isinstance(values, list) and len(values) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if not numbers:
            fail(key, section, f"{kind} must be [low, high], two numbers, got {values!r}")
        low, high = values
        if kind in ("int", "log_int") and not all(isinstance(v, int) for v in values):
            fail(key, section, f"{kind} must be [low, high], two integers, got {values!r}")
        if not low < high:
            fail(key, section, f"{kind} needs low < high, got {values!r}")
        if kind.startswith("log") and low <= 0:
            fail(key, section, f"{kind} needs low > 0 (a log scale), got {values!r}")


def _choices(values: list) -> list:
    return [json.dumps(v) if isinstance(v, (list, dict)) else v for v in values]


def suggest(trial: Any, path: tuple, space: dict) -> Any:
    """The value ``trial`` suggests for one space."""
    (kind, values), = space.items()
    key = name(path)
    if kind == "choice":
        offered = _choices(values)
        return values[offered.index(trial.suggest_categorical(key, offered))]
    if kind in ("int", "log_int"):
        return trial.suggest_int(key, values[0], values[1], log=kind == "log_int")
    return trial.suggest_float(key, float(values[0]), float(values[1]),
                               log=kind == "log_uniform")


def first(space: dict) -> Any:
    """A value inside the space (its first choice, or its low end): to check the config."""
    (_, values), = space.items()
    return values[0]


def resolve(config: dict, spaces: dict[tuple, dict], pick: Any) -> dict:
    """A copy of ``config`` with each space replaced by ``pick(path, space)``."""
    out = copy.deepcopy(config)
    for path, space in spaces.items():
        node = out
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = pick(path, space)
    return out


def fixed_params(params: dict, spaces: dict[tuple, dict]) -> dict:
    """A trial's parameters as values for the config (JSON text of list choices decoded)."""
    out = {}
    for path, space in spaces.items():
        value = params[name(path)]
        (kind, values), = space.items()
        if kind == "choice":
            value = values[_choices(values).index(value)]
        out[name(path)] = value
    return out
