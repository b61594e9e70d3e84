"""Writing a config back as TOML (the standard library reads TOML but does not write it).

Covers what fnn's configs hold: strings, booleans, integers, floats, lists of
those (nested too), tables, and arrays of tables (``[[model.layers]]``).
``tomllib.loads(dumps(config)) == config`` for such a config.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)      # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"dumps: cannot write {type(value).__name__} {value!r:.40} as TOML")


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "_-" for c in key)
    return key if bare else json.dumps(key)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dumps(config: dict, prefix: str = "") -> str:
    """The TOML text of ``config``.

    Examples:
      >>> from fnn.run.toml_writer import dumps
      >>> print(dumps({"seed": 0, "optimizer": {"name": "adam", "learning_rate": 0.001},
      ...              "model": {"layers": [{"type": "Dense", "features": 8}]}}))
      seed = 0
      <BLANKLINE>
      [optimizer]
      name = "adam"
      learning_rate = 0.001
      <BLANKLINE>
      [[model.layers]]
      type = "Dense"
      features = 8
      <BLANKLINE>
    """
    lines, tables = [], []
    for key, value in config.items():
        if isinstance(value, dict) or _is_table_array(value):
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = prefix + _key(key)
        if isinstance(value, dict):
            simple = {k: v for k, v in value.items()
                      if not (isinstance(v, dict) or _is_table_array(v))}
            if simple or not value:
                text += f"\n[{name}]\n" + dumps(simple)
            nested = {k: v for k, v in value.items() if k not in simple}
            if nested:
                text += dumps(nested, name + ".")
        else:
            for table in value:
                text += f"\n[[{name}]]\n" + dumps(table)
    return text
