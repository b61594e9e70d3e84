"""Looking up a function by name: one rule for activations, initializers, losses and metrics.

Names are case-insensitive and ``-`` or spaces count as ``_``; each module
keeps a table of its names and a table of aliases.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping


def lookup(module: str, kind: str, name: str, table: Mapping[str, Any],
           aliases: Mapping[str, str], more_names: tuple[str, ...] = ()) -> Any:
    """The entry of ``table`` for ``name`` (after normalising it and following aliases).

    Args:
      module: the public module, for messages (e.g. ``"losses"``).
      kind: what is looked up, for messages (e.g. ``"loss"``).
      name: the user's name, e.g. ``"Leaky-ReLU"``.
      table: canonical name -> entry.
      aliases: alias -> canonical name.
      more_names: other names the caller accepts (e.g. names with options), offered in
        the "did you mean" hint.

    Returns:
      the entry.

    Raises:
      ValueError: an unknown name; the message suggests the closest known names
        (``difflib``) and lists every known name.

    Examples:
      >>> from fnn.naming import lookup
      >>> lookup("demo", "thing", "Mean-Squared Error", {"mse": 1}, {"mean_squared_error": "mse"})
      1
      >>> fnn.metrics.get("acuracy")
      Traceback (most recent call last):
      ...
      ValueError: metrics.get: unknown metric 'acuracy' (did you mean 'accuracy' ...?); known names: ...
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = aliases.get(key, key)
    if key not in table:
        names = sorted(set(table) | set(aliases))
        close = difflib.get_close_matches(key, names + list(more_names), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"{module}.get: unknown {kind} {name!r}{hint}; known names: "
                         f"{', '.join(names)}")
    return table[key]


def resolve(module: str, kind: str, name_or_callable: Any, table: Mapping[str, Any],
            aliases: Mapping[str, str], more_names: tuple[str, ...] = ()) -> Any:
    """A callable passed through, or a name looked up with `lookup`.

    Args:
      module, kind, table, aliases: as for `lookup`.
      name_or_callable: a name, or a callable (returned unchanged).
      more_names: as for `lookup`.

    Returns:
      the callable, or the entry of ``table`` for the name.

    Raises:
      TypeError: neither a string nor a callable.
    """
    if callable(name_or_callable):
        return name_or_callable
    if not isinstance(name_or_callable, str):
        raise TypeError(f"{module}.get: expected a name or a callable, got "
                        f"{type(name_or_callable).__name__}")
    return lookup(module, kind, name_or_callable, table, aliases, more_names)
