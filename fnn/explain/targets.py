"""What an attribution explains: one score per example, picked from the model's output.

Every method in `fnn.explain` explains a scalar score ``S_i(x)`` of
example ``i``, read from the model's output (evaluation mode):

- a classifier's output ``(batch, C)`` (logits or probabilities, as the
  model returns them): ``S_i = f(x)_{i, t_i}`` for the class ``t_i`` given by
  ``target`` (an int for every example, an int array ``(batch,)`` one per
  example, or ``(batch, k)``: ``k`` classes per example, answered with a
  target axis after the batch axis); ``target=None`` takes the predicted
  class ``argmax_c f(x)_{i, c}``;
- a single output ``(batch,)`` or ``(batch, 1)`` (a regression, a binary
  logit): ``S_i = f(x)_i`` (``target`` is ``None`` or 0);
- anything else (a sequence of outputs, a score of one's own): ``target`` is
  a function ``target(outputs) -> (batch,)``;
- a model with several outputs (a dict or tuple): ``output=`` names the one
  to explain.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from fnn.layers.function import as_layer


def select_output(out: Any, output: Any, where: str) -> Any:
    """The output to explain: ``out`` itself, or ``out[output]`` for a dict or tuple."""
    if isinstance(out, Mapping) or isinstance(out, (tuple, list)):
        names = list(out) if isinstance(out, Mapping) else list(range(len(out)))
        if output is None:
            raise ValueError(f"{where}: the model has several outputs {names}; name the one to "
                             f"explain with output=..., e.g. output={names[0]!r}")
        key = output if isinstance(out, Mapping) else _index(output, len(out), where)
        if key not in (out if isinstance(out, Mapping) else range(len(out))):
            raise ValueError(f"{where}: output={output!r} is not one of the model's outputs "
                             f"{names}")
        return out[key]
    if output is not None:
        raise ValueError(f"{where}: output={output!r} names an output, but the model has a "
                         "single output; leave output=None")
    return out


def _index(output: Any, count: int, where: str) -> int:
    try:
        return int(output)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: the model's outputs are a tuple of {count}; output= is "
                         f"its position, got {output!r}") from None


@dataclasses.dataclass(frozen=True)
class Target:
    """How the score is read (static, hashable: part of the compiled function's key).

    Attributes:
      output: the output's key for a model with several outputs, or ``None``.
      kind: ``"class"`` (``(batch, C)`` outputs), ``"single"`` (one output per
        example) or ``"function"`` (``target`` is a function).
      function: the user's ``target(outputs) -> (batch,)`` for ``"function"``.
    """

    output: Any
    kind: str
    function: Callable | None = None


def forward(model: Any, params: Any, state: Any, x: Any, spec: Target) -> jax.Array:
    """The explained output of ``model`` on ``x`` in evaluation mode."""
    out, _ = as_layer(model).apply(params, state, x, train=False)
    return select_output(out, spec.output, "fnn.explain")


def scores(out: jax.Array, classes: Any, spec: Target) -> jax.Array:
    """``S_i``: one score per row of ``out`` (``classes``: one class per row, for ``"class"``)."""
    if spec.kind == "function":
        return spec.function(out)
    if spec.kind == "single":
        return out.reshape(out.shape[0])
    return jnp.take_along_axis(out, classes[:, None].astype(jnp.int32), axis=1)[:, 0]


def predicted(out: jax.Array, spec: Target) -> jax.Array:
    """The class each example is explained for when ``target=None``: the argmax (``0`` for a
    single output or a function target, which ignore it)."""
    if spec.kind == "class":
        return jnp.argmax(out, axis=1).astype(jnp.int32)
    return jnp.zeros(out.shape[:1], jnp.int32)


def resolve(model: Any, params: Any, state: Any, x: Any, target: Any, output: Any,
            where: str) -> tuple[Target, Any, int | None]:
    """Check ``target`` against the model's output and put it in one form.

    Args:
      model, params, state, x: the model and a batch (its output's shape is found with
        `jax.eval_shape`: no computation).
      target: ``None``, an int, an int array ``(batch,)`` or ``(batch, k)``, or a function.
      output: the output to explain, for a model with several.
      where: the calling function, named in messages.

    Returns:
      ``(spec, classes, k)``: the `Target`, the classes as an int32 array
      ``(batch,)`` or ``(batch, k)`` (``None`` for "the predicted class"), and
      ``k`` (``None`` without a target axis).

    Raises:
      ValueError: a model with several outputs and no ``output``; an output that
        is neither ``(batch, C)`` nor one per example without a function
        ``target``; a class out of range; a target of the wrong shape.
      TypeError: a target that is not an integer.
    """
    batch = batch_size_of(x, where)
    struct = jax.eval_shape(lambda p, s, v: as_layer(model).apply(p, s, v, train=False)[0],
                            params, state, x)
    out = select_output(struct, output, where)
    if callable(target) and not hasattr(target, "shape"):
        spec = Target(output, "function", target)
        got = jax.eval_shape(target, out)
        if getattr(got, "shape", None) != (batch,):
            raise ValueError(f"{where}: target(outputs) must return one score per example, "
                             f"shape ({batch},), got {getattr(got, 'shape', got)}")
        return spec, None, None
    shape = tuple(out.shape)
    if len(shape) == 2 and shape[1] > 1:
        spec, num_classes = Target(output, "class"), shape[1]
    elif shape in ((batch,), (batch, 1)):
        spec, num_classes = Target(output, "single"), 1
    else:
        raise ValueError(
            f"{where}: the explained output has shape {shape}; a target class needs outputs "
            f"(batch, classes) or one per example (batch,) / (batch, 1). For another output "
            "pass target=a function outputs -> (batch,) scores (e.g. lambda y: y[:, -1, 3] for "
            "class 3 at the last step)")
    if target is None:
        return spec, None, None
    classes = jnp.asarray(target)
    if not jnp.issubdtype(classes.dtype, jnp.integer):
        raise TypeError(f"{where}: target must be an int or an int array of classes, got "
                        f"dtype {classes.dtype}")
    if classes.ndim == 0:
        classes = jnp.broadcast_to(classes, (batch,))
    if classes.ndim not in (1, 2) or classes.shape[0] != batch:
        raise ValueError(f"{where}: target must be an int, an int array ({batch},) (one class "
                         f"per example) or ({batch}, k) (k classes per example), got shape "
                         f"{tuple(classes.shape)}")
    if not isinstance(classes, jax.core.Tracer):
        values = np.asarray(classes)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = values[(values < 0) | (values >= num_classes)].ravel()[0]
            what = (f"the model has {num_classes} classes (outputs {shape})"
                    if spec.kind == "class" else f"the output {shape} is one score per example")
            raise ValueError(f"{where}: target {int(bad)} is out of range: {what}, so a target "
                             f"is in [0, {num_classes - 1}]")
    classes = classes.astype(jnp.int32)
    return spec, classes, (classes.shape[1] if classes.ndim == 2 else None)


def batch_size_of(x: Any, where: str) -> int:
    """The leading axis shared by every array of ``x`` (a ``ValueError`` when they differ)."""
    sizes = {np.shape(a)[0] if np.ndim(a) else None for a in jax.tree.leaves(x)}
    if None in sizes or len(sizes) != 1:
        raise ValueError(f"{where}: x must be a batch (arrays with one leading batch axis "
                         f"shared by all inputs), got shapes "
                         f"{[np.shape(a) for a in jax.tree.leaves(x)]}")
    return sizes.pop()


def check_float_inputs(x: Any, where: str) -> None:
    """Gradient methods differentiate with respect to ``x``: every array must be floating."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(x):
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            name = jax.tree_util.keystr(path) or "x"
            raise TypeError(
                f"{where}: the input {name} has dtype {dtype}; gradient attributions need "
                "floating inputs (token ids have no gradient: explain an embedding's output "
                "with fnn.explain.grad_cam(..., layer=...) or attention_weights, or use "
                "occlusion)")


def repeat_for_targets(x: Any, classes: Any, k: int | None) -> tuple[Any, Any]:
    """With ``k`` targets per example, each example repeated ``k`` times (rows ``i*k + j``)
    and the classes flattened; otherwise ``(x, classes)`` unchanged."""
    if k is None:
        return x, classes
    return jax.tree.map(lambda a: jnp.repeat(a, k, axis=0), x), classes.reshape(-1)


def split_targets(attributions: Any, k: int | None) -> Any:
    """Undo `repeat_for_targets` on a result: ``(batch * k, ...)`` -> ``(batch, k, ...)``."""
    if k is None:
        return attributions
    return jax.tree.map(lambda a: a.reshape((a.shape[0] // k, k) + a.shape[1:]), attributions)
