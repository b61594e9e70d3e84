"""Sequential: a chain of layers, each feeding the next."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax

from fnn.errors import LayerError, LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, is_layer, layer_repr


def _struct(tree: Any) -> Any:
    """``tree`` with every array replaced by its ``jax.ShapeDtypeStruct``."""
    return jax.tree.map(input_struct, tree)


@dataclasses.dataclass(frozen=True)
class Sequential(Layer):
    """Compose layers: ``y = f_{n-1}(... f_1(f_0(x)))``.

    Parameters and state are dicts keyed by the child's index as a string:
    ``params == {"0": params_0, "1": params_1, ...}`` has an entry for every
    child (``{}`` for parameter-free ones such as :class:`fnn.Activation`);
    ``state`` has entries only for children with state, so a model without
    state has ``state == {}``.

    Keys: child ``i`` gets ``jax.random.fold_in(key, i)``, in ``init`` and in
    ``apply``, so adding a layer at the end (or changing one) leaves the other
    layers' initial weights and dropout masks unchanged. ``apply`` passes
    ``key=None`` to every child when it gets none.

    ``init`` infers each child's input shape with :func:`jax.eval_shape` of
    the previous child's ``apply`` (evaluation mode), so no forward pass is
    computed and ``jax.eval_shape(model.init, key, jax.ShapeDtypeStruct(...))``
    does no computation at all.

    Errors: a :class:`fnn.errors.LayerValueError` / ``LayerTypeError`` raised
    by child ``i`` is re-raised with ``i`` prepended to its path, so the
    message names the layer by its path in ``params``, e.g.
    ``Dense at path '1/0': expected input of shape (batch, ..., 4) ...``.

    Args:
      layers: the layers, in order (a list or tuple).

    Raises:
      LayerTypeError: an element is not a layer (has no ``init``/``apply``).
      LayerValueError: params/state dicts whose keys do not match the layers.

    Example:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dense(1)])
      >>> params, state = model.init(jax.random.key(0), jnp.zeros((4, 3)))
      >>> jax.tree.map(jnp.shape, params)
      {'0': {'b': (8,), 'w': (3, 8)}, '1': {}, '2': {'b': (1,), 'w': (8, 1)}}
      >>> y, state = model.apply(params, state, jnp.zeros((4, 3)))
      >>> y.shape, state
      ((4, 1), {})
    """

    layers: Sequence[Layer]

    def __post_init__(self):
        if is_layer(self.layers) or isinstance(self.layers, (str, bytes)) or not hasattr(
                self.layers, "__iter__"):
            raise LayerTypeError(self, "expected a list of layers, got "
                                 f"{type(self.layers).__name__}")
        layers = tuple(self.layers)
        for i, layer in enumerate(layers):
            if not is_layer(layer):
                raise LayerTypeError(
                    self, f"element {i} is {layer!r}, not a layer (no init/apply); wrap a "
                    "function of x in fnn.Activation(fn), or a function of (params, x) in "
                    "fnn.FunctionLayer(fn)")
        object.__setattr__(self, "layers", layers)

    def __repr__(self) -> str:
        return layer_repr(self)

    def input_layers(self) -> list:
        """The children that see the model's input as it is: the first one."""
        return list(self.layers[:1])

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Initialise child ``i`` with ``fold_in(key, i)`` on the shape it will receive."""
        # a tuple or dict input (e.g. a sequence and its mask) is a pytree of arrays
        x = _struct(x) if isinstance(x, (tuple, dict)) else input_struct(x)
        params, state = {}, {}
        for i, layer in enumerate(self.layers):
            name = str(i)
            try:
                p, s = layer.init(jax.random.fold_in(key, i), x)
                x, _ = jax.eval_shape(functools.partial(layer.apply, train=False),
                                      _struct(p), _struct(s), x)
            except LayerError as err:
                raise err.with_parent(name).with_traceback(err.__traceback__) from None
            params[name] = p
            if s or not isinstance(s, dict):
                state[name] = s
        return params, state

    def _check_keys(self, tree: Any, what: str, required: bool) -> None:
        names = [str(i) for i in range(len(self.layers))]
        if not isinstance(tree, dict):
            raise LayerValueError(self, f"{what} must be a dict keyed {names}, got "
                                  f"{type(tree).__name__}")
        extra = sorted(set(tree) - set(names))
        missing = sorted(set(names) - set(tree)) if required else []
        if extra or missing:
            expected = names if required else f"a subset of {names}"
            raise LayerValueError(
                self, f"{what} has keys {sorted(tree)} but this Sequential of {len(self.layers)} "
                f"layers expects {expected} (missing {missing}, unexpected {extra})")

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """Run the children in order, threading state; child ``i`` gets ``fold_in(key, i)``."""
        self._check_keys(params, "params", required=True)
        self._check_keys(state, "state", required=False)
        new_state = {}
        for i, layer in enumerate(self.layers):
            name = str(i)
            child_key = None if key is None else jax.random.fold_in(key, i)
            try:
                x, s = layer.apply(params[name], state.get(name, {}), x,
                                   key=child_key, train=train)
            except LayerError as err:
                raise err.with_parent(name).with_traceback(err.__traceback__) from None
            if s or not isinstance(s, dict):
                new_state[name] = s
        return x, new_state
