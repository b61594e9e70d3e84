"""Checks and pair handling shared by the sequence layers (recurrent, attention, positions)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from fnn.errors import LayerTypeError, LayerValueError


def check_sequence(layer: Any, shape: tuple[int, ...], dtype: Any, name: str = "input",
                   hint: bool = True) -> None:
    """``LayerValueError`` unless rank 3 ``(batch, time, features)``; ``LayerTypeError``
    unless floating point (integer ids belong in an ``Embedding`` first)."""
    if len(shape) != 3:
        extra = (" (one sequence? add a batch axis with x[None]; one feature? add it with "
                 "x[..., None])" if hint and len(shape) == 2 else "")
        raise LayerValueError(layer, f"expected {name} of rank 3, shape (batch, time, "
                              f"features); got rank {len(shape)}, shape {shape}{extra}")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise LayerTypeError(layer, f"{name} must be floating point, got dtype {dtype} "
                             f"(shape {shape}); integer ids go through fnn.Embedding first")


def split_pair(layer: Any, x: Any, what: str = "x or a pair (x, mask)") -> tuple[Any, Any]:
    """``(x, extra)`` from a pair input, or ``(x, None)``; a tuple of another length is an
    error naming ``what`` was expected."""
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise LayerValueError(layer, f"expected {what}, got a sequence of {len(x)} items")
        return x[0], x[1]
    return x, None
