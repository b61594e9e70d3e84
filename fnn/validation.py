"""One rule for checking user-given numbers: hyperparameters and counts.

Every factory and option of fnn checks its numbers with these two functions,
so each range is written once and every message reads the same way
(``"adam: b1 must be in [0, 1), got 1.5"``).

A value is checked where it is concrete (a Python number, a numpy or a
concrete JAX array). A traced value (an optimizer built inside ``jax.vmap``
over learning rates, `fnn.optim.set_hyperparams` under ``jit``) can only
be checked for its shape: its value is unknown until run time.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import numpy as np

# kind -> (lowest, lowest allowed, highest, highest allowed, text)
RANGES = {
    "nonnegative": (0.0, True, None, False, ">= 0"),
    "positive": (0.0, False, None, False, "> 0"),
    "beta": (0.0, True, 1.0, False, "in [0, 1)"),
    "fraction": (0.0, True, 1.0, True, "in [0, 1]"),
}
"""The ranges `check_number` knows."""


def concrete_value(value: Any) -> np.ndarray | None:
    """``value`` as a numpy array, or ``None`` if it is traced (unknown until run time).

    Args:
      value: a number, an array or a tracer.

    Returns:
      A numpy array, or ``None``.
    """
    try:
        return np.asarray(value)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_number(where: str, name: str, value: Any, kind: str = "nonnegative", *,
                 integer: bool = False) -> Any:
    """Check one scalar number against a range and return it unchanged.

    Args:
      where: the function to name in the error, e.g. ``"adam"``.
      name: the argument's name, e.g. ``"b1"``.
      value: a Python number, a scalar numpy/JAX array, or a tracer.
      kind: a key of `RANGES`: ``"nonnegative"`` (``>= 0``),
        ``"positive"`` (``> 0``), ``"beta"`` (``[0, 1)``), ``"fraction"`` (``[0, 1]``).
      integer: the value must also be a whole number.

    Returns:
      ``value``.

    Raises:
      TypeError: ``value`` is not a real number or array.
      ValueError: not a scalar, not finite, not whole (``integer``), or out of range.

    Examples:
      >>> from fnn.validation import check_number
      >>> check_number("adam", "b1", 1.5, "beta")
      Traceback (most recent call last):
      ...
      ValueError: adam: b1 must be in [0, 1), got 1.5
    """
    low, low_ok, high, high_ok, text = RANGES[kind]
    if isinstance(value, bool) or not isinstance(
            value, (numbers.Real, np.number, np.ndarray, jax.Array)):
        raise TypeError(f"{where}: {name} must be a real number or a scalar array, got "
                        f"{type(value).__name__}")
    if np.shape(value) != ():
        raise ValueError(f"{where}: {name} must be a scalar, got shape {np.shape(value)}")
    concrete = concrete_value(value)
    if concrete is None:
        return value
    if concrete.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {name} must be a real number, got {value!r}")
    number = float(concrete)
    if not math.isfinite(number):
        raise ValueError(f"{where}: {name} must be finite, got {number}")
    if integer and number != math.floor(number):
        raise ValueError(f"{where}: {name} must be a whole number, got {value!r}")
    if (number < low or (number == low and not low_ok)
            or (high is not None and (number > high or (number == high and not high_ok)))):
        shown = int(number) if integer else number
        raise ValueError(f"{where}: {name} must be {text}, got {shown}")
    return value


def check_int(where: str, name: str, value: Any, *, minimum: int = 1,
              maximum: int | None = None, maximum_name: str = "",
              allow_none: bool = False) -> Any:
    """Check a count (a Python int, not a bool) in ``[minimum, maximum]``; return it unchanged.

    Args:
      where: the function to name in the error.
      name: the argument's name.
      value: the value to check.
      minimum: the smallest allowed value (1: a positive int).
      maximum: the largest allowed value, or ``None``.
      maximum_name: what ``maximum`` is, for the message (e.g. ``"the number of examples"``).
      allow_none: ``None`` is allowed too.

    Returns:
      ``value``.

    Raises:
      ValueError: not an int, or out of range.

    Examples:
      >>> from fnn.validation import check_int
      >>> check_int("fit", "epochs", 0)
      Traceback (most recent call last):
      ...
      ValueError: fit: epochs must be a positive int, got 0
    """
    if value is None and allow_none:
        return value
    or_none = " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = ("a positive int" if minimum == 1 else
                f"an int >= {minimum}")
        raise ValueError(f"{where}: {name} must be {what}{or_none}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{where}: {name}={value} is larger than {maximum_name or 'allowed'} "
                         f"({maximum}); use {name} <= {maximum}{or_none}")
    return value
