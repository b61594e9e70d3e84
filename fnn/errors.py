"""Errors raised for bad input, naming where in the model it arrived.

A layer that rejects its input raises `LayerValueError` (wrong shape,
rank, unknown name, missing key) or `LayerTypeError` (wrong dtype).
Combinators such as `fnn.Sequential` catch these from their children
and re-raise them with the child's key prepended to ``path``, so the final
message names the layer by the same path its parameters have in ``params``:

    Dense at path '1': expected input of shape (batch, 64), got (32, 63)
"""

from __future__ import annotations


class _LayerError:
    """Mixin holding the layer name, its path in the model and the detail."""

    def __init__(self, layer: object, detail: str, path: tuple[str, ...] = ()):
        self.layer_name = layer if isinstance(layer, str) else type(layer).__name__
        self.detail = detail
        self.path = tuple(path)
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"at path '{'/'.join(self.path)}'" if self.path else "(top level)"
        return f"{self.layer_name} {where}: {self.detail}"

    def with_parent(self, key: str):
        """A copy of this error one level up: ``key`` is prepended to the path."""
        return type(self)(self.layer_name, self.detail, (str(key),) + self.path)


class LayerValueError(_LayerError, ValueError):
    """Input of the wrong shape, rank or value for a layer."""


class LayerTypeError(_LayerError, TypeError):
    """Input of the wrong dtype or kind for a layer."""


LayerError = (LayerValueError, LayerTypeError)
