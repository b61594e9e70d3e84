"""Sequential: a chain of layers, each feeding the next."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import jax

from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import (Layer, Params, State, child_repr, input_struct, is_layer,
                             layer_repr)
from fnn.layers.scope import child


def _struct(tree: Any) -> Any:
    """``tree`` with every array replaced by its ``jax.ShapeDtypeStruct``."""
    return jax.tree.map(input_struct, tree)


@dataclasses.dataclass(frozen=True)
class Sequential(Layer):
    """Compose layers: ``y = f_{n-1}(... f_1(f_0(x)))``.

    Parameters and state are dicts keyed by the child's index as a string:
    ``params == {"0": params_0, "1": params_1, ...}`` has an entry for every
    child (``{}`` for parameter-free ones such as `fnn.Activation`);
    ``state`` has entries only for children with state, so a model without
    state has ``state == {}``. Given a dict ``{name: layer}`` (in order), the
    children are keyed by their names instead, so paths read ``"body/conv1/w"``
    (freeze the body with ``fnn.optim.freeze("body", ...)``, get a child with
    `layer`).

    Keys: child ``i`` gets ``jax.random.fold_in(key, i)``, in ``init`` and in
    ``apply``, so adding a layer at the end (or changing one) leaves the other
    layers' initial weights and dropout masks unchanged. ``apply`` passes
    ``key=None`` to every child when it gets none.

    ``init`` infers each child's input shape with `jax.eval_shape` of
    the previous child's ``apply`` (evaluation mode), so no forward pass is
    computed and ``jax.eval_shape(model.init, key, jax.ShapeDtypeStruct(...))``
    does no computation at all.

    Errors: a `fnn.errors.LayerValueError` / ``LayerTypeError`` raised
    by child ``i`` is re-raised with ``i`` prepended to its path, so the
    message names the layer by its path in ``params``, e.g.
    ``Dense at path '1/0': expected input of shape (batch, ..., 4) ...``.

    Args:
      layers: the layers, in order (a list or tuple), or a dict ``{name: layer}``.

    Raises:
      LayerTypeError: an element is not a layer (has no ``init``/``apply``).
      LayerValueError: params/state dicts whose keys do not match the layers; names
        that are not non-empty strings without ``/``.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dense(1)])
      >>> params, state = model.init(jax.random.key(0), jnp.zeros((4, 3)))
      >>> jax.tree.map(jnp.shape, params)
      {'0': {'b': (8,), 'w': (3, 8)}, '1': {}, '2': {'b': (1,), 'w': (8, 1)}}
      >>> y, state = model.apply(params, state, jnp.zeros((4, 3)))
      >>> y.shape, state
      ((4, 1), {})
      >>> named = fnn.Sequential({"body": fnn.Sequential({"hidden": fnn.Dense(8)}),
      ...                         "head": fnn.Dense(1)})
      >>> jax.tree.map(jnp.shape, named.init(jax.random.key(0), jnp.zeros((4, 3)))[0])
      {'body': {'hidden': {'b': (8,), 'w': (3, 8)}}, 'head': {'b': (1,), 'w': (8, 1)}}
    """

    layers: Sequence[Layer] | Mapping[str, Layer]
    names: tuple[str, ...] | None = None     # the dict's keys; None: "0", "1", ...

    def __post_init__(self):
        names = self.names
        if isinstance(self.layers, Mapping):
            names, layers = tuple(self.layers), tuple(self.layers.values())
        elif is_layer(self.layers) or isinstance(self.layers, (str, bytes)) or not hasattr(
                self.layers, "__iter__"):
            raise LayerTypeError(self, "expected a list of layers or a dict {name: layer}, "
                                 f"got {type(self.layers).__name__}")
        else:
            layers = tuple(self.layers)
        if names is not None:
            names = tuple(names)
            if len(names) != len(layers) or len(set(names)) != len(names) or not all(
                    isinstance(n, str) and n and "/" not in n for n in names):
                raise LayerValueError(self, f"layer names must be distinct non-empty strings "
                                      f"without '/', one per layer; got {names}")
        for name, layer in zip(names or range(len(layers)), layers):
            if not is_layer(layer):
                raise LayerTypeError(
                    self, f"element {name!r} is {layer!r}, not a layer (no init/apply); wrap "
                    "a function of x in fnn.Activation(fn), or a function of (params, x) in "
                    "fnn.FunctionLayer(fn)")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "names", names)

    @property
    def child_names(self) -> tuple[str, ...]:
        """The keys of the children in params and state: their names, or ``"0", "1", ..."``."""
        return self.names if self.names is not None else tuple(
            str(i) for i in range(len(self.layers)))

    def layer(self, name: str) -> Layer:
        """The child called ``name`` (``"0", "1", ...`` for an unnamed Sequential).

        Raises:
          KeyError: no such child (the message lists the names).
        """
        names = self.child_names
        if name not in names:
            raise KeyError(f"Sequential has no layer {name!r}; its layers are {list(names)}")
        return self.layers[names.index(name)]

    def __repr__(self) -> str:
        if self.names is None:
            return layer_repr(self)
        inner = ", ".join(f"{n!r}: {child_repr(l)}" for n, l in zip(self.names, self.layers))
        return f"Sequential({{{inner}}})"

    def input_layers(self) -> list:
        """The children that see the model's input as it is: the first one."""
        return list(self.layers[:1])

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Initialise child ``i`` with ``fold_in(key, i)`` on the shape it will receive."""
        # a tuple or dict input (e.g. a sequence and its mask) is a pytree of arrays
        x = _struct(x) if isinstance(x, (tuple, dict)) else input_struct(x)
        params, state = {}, {}
        for i, (name, layer) in enumerate(zip(self.child_names, self.layers)):
            with child(name):
                p, s = layer.init(jax.random.fold_in(key, i), x)
                x, _ = jax.eval_shape(functools.partial(layer.apply, train=False),
                                      _struct(p), _struct(s), x)
            params[name] = p
            if s or not isinstance(s, dict):
                state[name] = s
        return params, state

    def _check_keys(self, tree: Any, what: str, required: bool) -> None:
        names = list(self.child_names)
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
        for i, (name, layer) in enumerate(zip(self.child_names, self.layers)):
            child_key = None if key is None else jax.random.fold_in(key, i)
            with child(name):
                x, s = layer.apply(params[name], state.get(name, {}), x,
                                   key=child_key, train=train)
            if s or not isinstance(s, dict):
                new_state[name] = s
        return x, new_state
