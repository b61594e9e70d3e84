"""Looking up a function by name: one rule for activations, initializers, losses and metrics.

Names are case-insensitive and ``-`` or spaces count as ``_``; each module
keeps a table of its names and a table of aliases.
"""

from __future__ import annotations

from typing import Any, Mapping


def lookup(module: str, kind: str, name: str, table: Mapping[str, Any],
           aliases: Mapping[str, str]) -> Any:
    """The entry of ``table`` for ``name`` (after normalising it and following aliases).

    Args:
      module: the public module, for messages (e.g. ``"losses"``).
      kind: what is looked up, for messages (e.g. ``"loss"``).
      name: the user's name, e.g. ``"Leaky-ReLU"``.
      table: canonical name -> entry.
      aliases: alias -> canonical name.

    Returns:
      the entry.

    Raises:
      ValueError: an unknown name; the message lists every known name.

    Example:
      >>> from fnn.naming import lookup
      >>> lookup("demo", "thing", "Mean-Squared Error", {"mse": 1}, {"mean_squared_error": "mse"})
      1
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = aliases.get(key, key)
    if key not in table:
        known = ", ".join(sorted(set(table) | set(aliases)))
        raise ValueError(f"{module}.get: unknown {kind} {name!r}; known names: {known}")
    return table[key]


def resolve(module: str, kind: str, name_or_callable: Any, table: Mapping[str, Any],
            aliases: Mapping[str, str]) -> Any:
    """A callable passed through, or a name looked up with :func:`lookup`.

    Args:
      module, kind, table, aliases: as for :func:`lookup`.
      name_or_callable: a name, or a callable (returned unchanged).

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
    return lookup(module, kind, name_or_callable, table, aliases)
