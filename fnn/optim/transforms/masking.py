"""Masking, partitioning and freezing parameters by path (transfer learning: freeze the body).

Composition is explicit, as in optax: `masked` applies a transform to
some leaves, `partition` sends each leaf to the transform of its label,
and `freeze` is the partition that gives frozen leaves a zero update and
no state, the other leaves the optimizer it wraps. Nothing here changes what
comes after it in a `fnn.optim.chain`.

A *mask* selects parameter leaves. It can be

- path patterns: a string or a list of strings matched with
  `fnmatch.fnmatchcase` against each leaf's path, the ``'/'``-joined
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

from fnn.caching import memoize
from fnn.optim.base import EmptyState, FreezeState, GradientTransformation, identity
from fnn.optim.validation import check_same_tree, path_to_str


@dataclasses.dataclass(frozen=True)
class MaskSpec:
    """A resolved-on-demand, hashable mask (see the module docstring)."""

    where: str
    arg: str
    patterns: tuple[str, ...] | None = None
    predicate: Callable[[str], bool] | None = None
    tree: tuple | None = None  # (treedef, leaves) of a pytree of bools

    def resolve(self, tree: Any) -> list[bool]:
        """One bool per leaf of ``tree`` (flatten order): True where selected."""
        with_paths, treedef = jax.tree_util.tree_flatten_with_path(tree)
        paths = [path_to_str(path) for path, _ in with_paths]
        if self.patterns is not None:
            selected = [any(path_matches(p, pattern) for pattern in self.patterns) for p in paths]
            for pattern in self.patterns:
                if not any(path_matches(p, pattern) for p in paths):
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
        return [bool(s) for s in selected]


def path_matches(path: str, pattern: str) -> bool:
    """Whether parameter path ``path`` (``"0/w"``) is selected by ``pattern``: an ``fnmatch``
    pattern matching the path itself or a prefix of it (``"0"`` selects ``"0/w"``)."""
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern + "/*")


def mask_spec(where: str, arg: str, mask: Any) -> MaskSpec:
    """Validate a user's mask (patterns, predicate or bool pytree) into a `MaskSpec`."""
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
    """State of `masked`: the inner state, built for the selected leaves only."""

    inner_state: Any


def _keep(tree: Any, selected: list[bool]) -> Any:
    """``tree`` with the unselected leaves replaced by ``None`` (an empty subtree)."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef.unflatten([leaf if s else None for leaf, s in zip(leaves, selected)])


def _apply_to_selected(inner_update: Callable, selected: list[bool], updates: Any,
                       inner_state: Any, params: Any) -> tuple[list, Any]:
    """Run ``inner_update`` on the selected leaves only; their new values (others ``None``)."""
    treedef = jax.tree.structure(updates)
    inner_params = None if params is None else _keep(params, selected)
    inner_out, inner_state = inner_update(_keep(updates, selected), inner_state, inner_params)
    return treedef.flatten_up_to(inner_out), inner_state


def _zero(update: jax.Array) -> jax.Array:
    # -0.0 is the exact zero for addition: p + (-0.0) == p bit for bit, even for p = -0.0.
    return jnp.full_like(update, -0.0)


@memoize
def _mask_update(inner_update: Callable, spec: MaskSpec, freeze: bool) -> Callable:
    """``update`` of `masked` (``inner`` on the selected leaves, the others passed
    through) and of `freeze` (``inner`` on the others, the selected ones zeroed)."""
    state_class = FreezeState if freeze else MaskedState

    def update(updates: Any, state: Any, params: Any = None):
        if params is not None:
            check_same_tree(spec.where, "grads", updates, "params", params)
        chosen = spec.resolve(updates)
        selected = [not c for c in chosen] if freeze else chosen
        new, inner_state = _apply_to_selected(inner_update, selected, updates,
                                              state.inner_state, params)
        leaves, treedef = jax.tree.flatten(updates)
        merged = [n if s else (_zero(old) if freeze else old)
                  for old, n, s in zip(leaves, new, selected)]
        return treedef.unflatten(merged), state_class(inner_state)

    return update


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
      A `GradientTransformation` with state `MaskedState`.

    Examples:
      >>> params = {"w": jnp.ones(2), "b": jnp.ones(2)}
      >>> opt = fnn.optim.masked(fnn.optim.add_weight_decay(0.5), "w")  # no decay on biases
      >>> updates, _ = opt.update({"w": jnp.zeros(2), "b": jnp.zeros(2)}, opt.init(params), params)
      >>> updates["w"].tolist(), updates["b"].tolist()
      ([0.500, 0.500], [0.000, 0.000])
    """
    inner = GradientTransformation(*inner)
    spec = mask_spec("masked", "mask", mask)

    def init(params: Any) -> MaskedState:
        return MaskedState(inner.init(_keep(params, spec.resolve(params))))

    return GradientTransformation(init, _mask_update(inner.update, spec, False))


def _set_to_zero_update(updates: Any, state: EmptyState, params: Any = None):
    del params
    return jax.tree.map(_zero, updates), state


def set_to_zero() -> GradientTransformation:
    """Replace every update by zero: ``u <- 0`` (exactly ``-0.0``, so ``theta + u == theta`` bit for bit).

    Returns:
      A stateless `GradientTransformation`.

    Examples:
      >>> opt = fnn.optim.set_to_zero()
      >>> params = jnp.array([1.5, -0.0])
      >>> fnn.optim.apply_updates(params, opt.update(jnp.ones(2), opt.init(params))[0]).tolist()
      [1.50, -0.000]
    """
    return GradientTransformation(lambda params: EmptyState(), _set_to_zero_update)


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    """A hashable labelling of parameter leaves: a predicate on the path, or a label tree."""

    labels: tuple[Any, ...]
    predicate: Callable[[str], Any] | None = None
    tree: tuple | None = None  # (treedef, labels) of a label pytree

    def resolve(self, params: Any) -> list:
        """One label per leaf of ``params`` (flatten order)."""
        with_paths, treedef = jax.tree_util.tree_flatten_with_path(params)
        if self.predicate is not None:
            found = [self.predicate(path_to_str(path)) for path, _ in with_paths]
        else:
            label_tree = self.tree[0].unflatten(self.tree[1])
            try:
                full = jax.tree.map(lambda label, sub: jax.tree.map(lambda _: label, sub),
                                    label_tree, params)
            except (ValueError, TypeError) as error:
                raise ValueError("partition: labels must have the params' tree structure (or a "
                                 f"prefix of it): labels {self.tree[0]}, params {treedef}") from error
            found = jax.tree.leaves(full)
        for (path, _), label in zip(with_paths, found):
            if label not in self.labels:
                raise ValueError(f"partition: parameter '{path_to_str(path)}' has label {label!r}, "
                                 f"which has no transform; the labels are {list(self.labels)}")
        return found


class PartitionState(NamedTuple):
    """State of `partition`: ``{label: state}``, each built for that label's leaves only."""

    inner_states: dict


@memoize
def _partition_update(labels: tuple, update_fns: tuple[Callable, ...], spec: LabelSpec) -> Callable:
    def update(updates: Any, state: PartitionState, params: Any = None):
        if params is not None:
            check_same_tree("partition", "grads", updates, "params", params)
        found = spec.resolve(updates)
        leaves, treedef = jax.tree.flatten(updates)
        merged, states = list(leaves), {}
        for label, update_fn in zip(labels, update_fns):
            selected = [f == label for f in found]
            new, states[label] = _apply_to_selected(update_fn, selected, updates,
                                                    state.inner_states[label], params)
            merged = [n if s else m for m, n, s in zip(merged, new, selected)]
        return treedef.unflatten(merged), PartitionState(states)

    return update


def partition(transforms: dict, labels: Any) -> GradientTransformation:
    """Send each parameter leaf to the transform of its label (optax's ``multi_transform``).

    ``u_i <- transforms[label_i](u)_i``. Each transform sees (and keeps state
    for) the leaves of its own label only; the others are ``None`` for it.

    Args:
      transforms: ``{label: GradientTransformation}``; labels are hashable
        (strings, ints, bools).
      labels: a function ``fn(path: str) -> label`` of the ``'/'``-joined leaf
        path, or a pytree of labels with the params' structure (or a prefix of it).

    Returns:
      A `GradientTransformation` with state `PartitionState`.

    Raises:
      ValueError: a leaf whose label has no transform (when ``init``/``update`` is traced).

    Examples:
      >>> params = {"body": jnp.ones(2), "head": jnp.ones(2)}
      >>> opt = fnn.optim.partition({"slow": fnn.optim.sgd(0.01), "fast": fnn.optim.sgd(1.0)},
      ...                           {"body": "slow", "head": "fast"})
      >>> u, _ = opt.update(jax.tree.map(jnp.ones_like, params), opt.init(params), params)
      >>> u["body"].tolist(), u["head"].tolist()
      ([-0.0100, -0.0100], [-1.00, -1.00])
    """
    if not isinstance(transforms, dict) or not transforms:
        raise TypeError(f"partition: transforms must be a non-empty dict label -> transform, got "
                        f"{type(transforms).__name__}")
    names = tuple(transforms)
    inner = tuple(GradientTransformation(*transforms[n]) for n in names)
    if callable(labels):
        spec = LabelSpec(names, predicate=labels)
    else:
        leaves, treedef = jax.tree.flatten(labels)
        spec = LabelSpec(names, tree=(treedef, tuple(leaves)))

    def init(params: Any) -> PartitionState:
        found = spec.resolve(params)
        return PartitionState({n: t.init(_keep(params, [f == n for f in found]))
                               for n, t in zip(names, inner)})

    return GradientTransformation(init, _partition_update(names, tuple(t.update for t in inner), spec))


def freeze(mask_or_path_patterns: Any,
           optimizer: GradientTransformation | None = None) -> GradientTransformation:
    """Freeze the selected parameters and train the others with ``optimizer``.

    ``u_i <- 0`` for a frozen leaf ``i`` (exactly ``-0.0``: the parameter stays
    bit-identical), ``u_i <- optimizer(u)_i`` for the others. It is the
    `partition` that gives frozen leaves `set_to_zero`: the
    optimizer sees only the trainable leaves and keeps NO state for the frozen
    ones (an Adam over a frozen body stores moments for the head only), and
    weight decay never touches them. Wrappers go around it:
    ``skip_nonfinite(freeze(m, adamw(...)))``, ``fnn.train.loss_scaled(freeze(m, ...), scale)``.
    Without ``optimizer`` it zeroes the frozen leaves and passes the others
    through. A chain element holding a freeze must be the chain's last
    element (``init`` raises otherwise), since what followed it would still
    see the frozen leaves.

    Args:
      mask_or_path_patterns: what to freeze: path pattern(s) such as
        ``"body/*"`` or ``["0", "1/w"]``, a predicate ``fn(path) -> bool``, or a
        pytree of bools (True = frozen). A pattern matching nothing raises
        ``ValueError`` when ``init`` or ``update`` is traced.
      optimizer: the transformation for the trainable leaves (default: identity).

    Returns:
      A `GradientTransformation` with state `FreezeState`.

    Examples:
      >>> params = {"body": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(2)}}
      >>> opt = fnn.optim.freeze("body", fnn.optim.adam(0.1))
      >>> state = opt.init(params)
      >>> grads = jax.tree.map(jnp.ones_like, params)
      >>> new = fnn.optim.apply_updates(params, opt.update(grads, state, params)[0])
      >>> new["body"]["w"].tolist(), new["head"]["w"].round(3).tolist()
      ([1.00, 1.00], [0.900, 0.900])
      >>> fnn.optim.find_states(state, fnn.optim.ScaleByAdamState)[0].mu["body"]  # no moments kept
      {'w': None}
    """
    spec = mask_spec("freeze", "mask_or_path_patterns", mask_or_path_patterns)
    inner = identity() if optimizer is None else GradientTransformation(*optimizer)

    def init(params: Any) -> FreezeState:
        frozen = spec.resolve(params)  # a pattern matching nothing fails here, early
        return FreezeState(inner.init(_keep(params, [not f for f in frozen])))

    return GradientTransformation(init, _mask_update(inner.update, spec, True))
