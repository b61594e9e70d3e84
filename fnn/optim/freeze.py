"""Freezing and masking parameters by path (transfer learning: freeze the body, train the head).

A *mask* selects parameter leaves. It can be

- path patterns: a string or a list of strings matched with
  :func:`fnmatch.fnmatchcase` against each leaf's path, the ``'/'``-joined
  dict keys / sequence indices (``{"0": {"w": ...}}`` has path ``"0/w"``).
  ``*`` matches any characters *including* ``'/'``, and a pattern also selects
  everything below a matching prefix, so ``"body"``, ``"body/*"`` and
  ``"body*"`` all select ``"body/0/w"``. Every pattern must match at least
  one leaf (``ValueError`` otherwise: a typo never silently freezes nothing).
- a predicate ``fn(path: str) -> bool``;
- a pytree of Python bools with the params' structure, or a prefix of it
  (``{"body": True, "head": False}``).

The mask is static (part of the compiled program) and is resolved when
``init`` / ``update`` are traced.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.optim.base import EmptyState, GradientTransformation
from fnn.optim.validation import check_same_tree, memoize, path_to_str


@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """A resolved-on-demand, hashable mask (see the module docstring)."""

    where: str
    arg: str
    patterns: tuple[str, ...] | None = None
    predicate: Callable[[str], bool] | None = None
    tree: tuple | None = None  # (treedef, leaves) of a pytree of bools
    invert: bool = False

    def inverted(self) -> "MaskSpec":
        return dataclasses.replace(self, invert=not self.invert)

    def resolve(self, tree: Any) -> list[bool]:
        """One bool per leaf of ``tree`` (flatten order): True where selected."""
        with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
        paths = [path_to_str(path) for path, _ in with_paths]
        if self.patterns is not None:
            selected = [any(_matches(p, pattern) for pattern in self.patterns) for p in paths]
            for pattern in self.patterns:
                if not any(_matches(p, pattern) for p in paths):
                    shown = ", ".join(paths[:20]) + (", ..." if len(paths) > 20 else "")
                    raise ValueError(f"{self.where}: pattern {pattern!r} in {self.arg} matches no "
                                     f"parameter; the parameter paths are: {shown or '(none)'}")
        elif self.predicate is not None:
            selected = [bool(self.predicate(p)) for p in paths]
        else:
            mask_tree = self.tree[0].unflatten(self.tree[1])
            try:
                full = jax.tree.map(lambda m, sub: jax.tree.map(lambda _: m, sub), mask_tree, tree)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{self.where}: {self.arg} must have the params' tree structure "
                                 f"(or a prefix of it): mask {self.tree[0]}, params {treedef}") from error
            selected = jax.tree.leaves(full)
        return [s != self.invert for s in selected]


def _matches(path: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + "/*")


def mask_spec(where: str, arg: str, mask: Any) -> MaskSpec:
    """Validate a user's mask (patterns, predicate or bool pytree) into a :class:`MaskSpec`."""
    if isinstance(mask, str):
        return MaskSpec(where, arg, patterns=(mask,))
    if isinstance(mask, (list, tuple)) and mask and all(isinstance(m, str) for m in mask):
        return MaskSpec(where, arg, patterns=tuple(mask))
    if callable(mask):
        return MaskSpec(where, arg, predicate=mask)
    leaves, treedef = jax.tree.flatten(mask)
    if not leaves or not all(isinstance(leaf, (bool, np.bool_)) for leaf in leaves):
        raise TypeError(f"{where}: {arg} must be a path pattern, a list of patterns, a predicate "
                        f"on the path, or a pytree of Python bools; got {mask!r}")
    return MaskSpec(where, arg, tree=(treedef, tuple(bool(leaf) for leaf in leaves)))


class MaskedState(NamedTuple):
    """State of :func:`masked`: the inner state, built for the selected leaves only."""

    inner_state: Any


def _keep(tree: Any, selected: list[bool]) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef.unflatten([leaf if s else None for leaf, s in zip(leaves, selected)])


@memoize
def _masked_update(inner_update: Callable, spec: MaskSpec) -> Callable:
    def update(updates: Any, state: MaskedState, params: Any = None):
        selected = spec.resolve(updates)
        if params is not None:
            check_same_tree(spec.where, "grads", updates, "params", params)
            params = _keep(params, selected)
        leaves, treedef = jax.tree.flatten(updates)
        inner_out, inner_state = inner_update(_keep(updates, selected), state.inner_state, params)
        inner_leaves = treedef.flatten_up_to(inner_out)
        merged = [new if s else old for old, new, s in zip(leaves, inner_leaves, selected)]
        return treedef.unflatten(merged), MaskedState(inner_state)

    return update


def masked_with_spec(inner: GradientTransformation, spec: MaskSpec) -> GradientTransformation:
    """:func:`masked` with an already validated :class:`MaskSpec`."""
    inner = GradientTransformation(*inner)

    def init(params: Any) -> MaskedState:
        return MaskedState(inner.init(_keep(params, spec.resolve(params))))

    return GradientTransformation(init, _masked_update(inner.update, spec))


def masked(inner: GradientTransformation, mask: Any) -> GradientTransformation:
    """Apply ``inner`` only to the selected leaves; the others pass through unchanged.

    ``u_i <- inner(u)_i`` where ``mask`` selects leaf ``i``, else ``u_i``. The
    inner transformation sees (and keeps state for) the selected leaves only:
    the unselected ones are ``None`` in its input, state and params.

    Args:
      inner: the transformation to apply.
      mask: path pattern(s), a predicate ``fn(path) -> bool``, or a pytree of
        bools (see the module docstring). A pattern matching nothing raises.

    Returns:
      A :class:`GradientTransformation` with state :class:`MaskedState`.

    Example:
      >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
      >>> opt = fnn.optim.masked(fnn.optim.add_weight_decay(0.5), "w")  # no decay on biases
      >>> updates, _ = opt.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, opt.init(params), params)
      >>> updates["w"].tolist(), updates["b"].tolist()
      ([0.500, 0.500], [0.000, 0.000])
    """
    return masked_with_spec(inner, mask_spec("masked", "mask", mask))


@memoize
def _freeze_update(spec: MaskSpec) -> Callable:
    def update(updates: Any, state: EmptyState, params: Any = None):
        del params
        selected = spec.resolve(updates)
        leaves, treedef = jax.tree.flatten(updates)
        # -0.0 is the exact zero for addition: p + (-0.0) == p bit for bit, even for p = -0.0.
        out = [jnp.full_like(u, -0.0) if s else u for u, s in zip(leaves, selected)]
        return treedef.unflatten(out), state

    update.wrap_following = lambda rest: masked_with_spec(rest, spec.inverted())
    return update


def freeze(mask_or_path_patterns: Any) -> GradientTransformation:
    """Freeze the selected parameters: their update is exactly zero, ``u_i <- 0``.

    Put it first in a :func:`fnn.optim.chain`: every transform after it is
    then wrapped in :func:`masked` with the complementary mask, so it keeps NO
    state for the frozen leaves (an Adam over a frozen body stores moments for
    the head only) and never changes them; frozen parameters stay bit-identical.
    The same holds for everything after a chain (or a
    :func:`fnn.optim.skip_nonfinite`) that contains the freeze, when that is
    itself an element of a chain: ``chain(chain(freeze(m), clip), adamw(...))``.
    Used alone or inside :func:`masked`, it zeroes the frozen leaves and passes
    the others through.

    Args:
      mask_or_path_patterns: what to freeze: path pattern(s) such as
        ``"body/*"`` or ``["0", "1/w"]``, a predicate ``fn(path) -> bool``, or a
        pytree of bools (True = frozen). A pattern matching nothing raises
        ``ValueError`` when ``init`` or ``update`` is traced.

    Returns:
      A stateless :class:`GradientTransformation`.

    Example:
      >>> params = {"body": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}
      >>> opt = fnn.optim.chain(fnn.optim.freeze("body"), fnn.optim.adam(0.1))
      >>> state = opt.init(params)
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> new = fnn.optim.apply_updates(params, opt.update(grads, state, params)[0])
      >>> new["body"]["w"].tolist(), new["head"]["w"].round(3).tolist()
      ([1.00, 1.00], [0.900, 0.900])
      >>> fnn.optim.find_states(state, fnn.optim.ScaleByAdamState)[0].mu["body"]  # no moments kept
      {'w': None}
    """
    spec = mask_spec("freeze", "mask_or_path_patterns", mask_or_path_patterns)

    def init(params: Any) -> EmptyState:
        spec.resolve(params)  # a pattern matching nothing fails here, early
        return EmptyState()

    return GradientTransformation(init, _freeze_update(spec))
