"""Parallel: several branches (heads) on one input, outputs as a tuple or a dict."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import jax

from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, Params, State, input_struct, is_layer, layer_repr
from fnn.layers.scope import child


@dataclasses.dataclass(frozen=True, init=False)
class Parallel(Layer):
    """Run every branch on the same input: ``y = (f_0(x), f_1(x), ...)`` or ``{name: f(x)}``.

    The notes' multi-task learning: one shared trunk and a head per task,
    ``Sequential([trunk..., Parallel({"digit": Dense(10), "parity": Dense(1)})])``;
    `fnn.fit` trains such a model with a loss per output
    (``loss={"digit": ..., "parity": ...}``, ``loss_weights=...``, see
    ``docs/training.md``).

    Given a list of layers the output is a tuple and params/state are keyed
    ``"0", "1", ...``; given a dict ``{name: layer}`` the output is a dict and
    they are keyed by the names. Branch ``i`` (in the order given) gets
    ``fold_in(key, i)``. State has entries only for branches with state.

    Args:
      branches: a list/tuple of layers, or a dict ``{name: layer}``.

    Raises:
      LayerTypeError: a branch is not a layer, or ``branches`` is neither a
        sequence nor a dict.
      LayerValueError: no branches; names that are not non-empty strings;
        params whose keys differ from the branch names.

    Examples:
      >>> heads = fnn.Parallel({"digit": fnn.Dense(10), "parity": fnn.Dense(1)})
      >>> params, state = heads.init(jax.random.key(0), jnp.zeros((3, 8)))
      >>> y, _ = heads.apply(params, state, jnp.zeros((3, 8)))
      >>> jax.tree.map(jnp.shape, y)
      {'digit': (3, 10), 'parity': (3, 1)}
      >>> fnn.Parallel([fnn.Dense(2), fnn.Dense(3)]).names
      ('0', '1')
    """

    names: tuple[str, ...]
    layers: tuple[Layer, ...]
    named: bool

    def __init__(self, branches: Sequence[Layer] | Mapping[str, Layer]):
        if isinstance(branches, Mapping):
            names, layers, named = tuple(branches), tuple(branches.values()), True
            for name in names:
                if not isinstance(name, str) or not name or "/" in name:
                    raise LayerValueError(self, f"branch names must be non-empty strings "
                                          f"without '/', got {name!r}")
        elif isinstance(branches, (list, tuple)):
            layers, named = tuple(branches), False
            names = tuple(str(i) for i in range(len(layers)))
        else:
            raise LayerTypeError(self, "expected a list of layers or a dict {name: layer}, got "
                                 f"{type(branches).__name__}")
        if not layers:
            raise LayerValueError(self, "needs at least one branch")
        for name, layer in zip(names, layers):
            if not is_layer(layer):
                raise LayerTypeError(self, f"branch {name!r} is {layer!r}, not a layer")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "named", named)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {layer_repr(l)}" if self.named else layer_repr(l)
                          for n, l in zip(self.names, self.layers))
        return f"Parallel({{{inner}}})" if self.named else f"Parallel([{inner}])"

    def branch(self, name: str) -> Layer:
        """The layer of branch ``name`` (``"0", "1", ...`` for an unnamed Parallel)."""
        return self.layers[self.names.index(name)]

    def _pack(self, values: list) -> Any:
        return dict(zip(self.names, values)) if self.named else tuple(values)

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Initialise branch ``i`` with ``fold_in(key, i)`` on ``x``."""
        x = input_struct(x)
        params, state = {}, {}
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            with child(name):
                params[name], s = layer.init(jax.random.fold_in(key, i), x)
            if s or not isinstance(s, dict):
                state[name] = s
        return params, state

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """Every branch on ``x``; returns ``(outputs, new_state)``."""
        if not isinstance(params, dict) or set(params) != set(self.names):
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys {list(self.names)}, "
                                  f"got {got}")
        outputs, new_state = [], {}
        for i, (name, layer) in enumerate(zip(self.names, self.layers)):
            branch_key = None if key is None else jax.random.fold_in(key, i)
            with child(name):
                y, s = layer.apply(params[name], state.get(name, {}), x, key=branch_key,
                                   train=train)
            outputs.append(y)
            if s or not isinstance(s, dict):
                new_state[name] = s
        return self._pack(outputs), new_state
