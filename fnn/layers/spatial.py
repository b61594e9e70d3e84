"""Helpers shared by the layers that slide a window over spatial axes (convolution, pooling).

Inputs are batch-first and channels-last, ``(batch, *spatial, channels)``.
"""

from __future__ import annotations

import numbers
from typing import Any

from fnn.errors import LayerValueError

SPATIAL_AXES = {1: "length", 2: "height, width", 3: "depth, height, width"}
"""The names of the spatial axes of a 1-, 2- or 3-D layer, for messages and docs."""


def int_tuple(layer: Any, name: str, value: Any, rank: int) -> tuple[int, ...]:
    """``value`` (an int or a tuple of ``rank`` ints, all >= 1) as a tuple.

    Args:
      layer: the layer, named in the error.
      name: the argument's name, for the error.
      value: an int, or a tuple or list of ``rank`` ints.
      rank: the number of spatial axes.

    Returns:
      A tuple of ``rank`` Python ints.

    Raises:
      LayerValueError: anything else (a bool, a float, a value < 1, a wrong length).
    """
    values = (value,) * rank if isinstance(value, numbers.Integral) else value
    if (not isinstance(values, (tuple, list)) or len(values) != rank
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
                   for v in values)):
        raise LayerValueError(layer, f"{name} must be a positive int or a tuple of {rank} "
                              f"positive ints, got {value!r}")
    return tuple(int(v) for v in values)


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TF/Keras "same" padding of an axis of size ``n``: output ``ceil(n / s)``.

    Args:
      n: the axis size.
      k: the window (for a dilated kernel, its span ``(k - 1) d + 1``).
      s: the stride.

    Returns:
      ``(before, after)``: ``max((ceil(n / s) - 1) s + k - n, 0)`` elements, the
      odd one after.
    """
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2
