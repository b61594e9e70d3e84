"""Mixed precision: a dtype policy and loss scaling.

A `Policy` names three dtypes:

- ``param_dtype``: storage of parameters and updates. Keep it ``float32``: an
  update much smaller than ``theta`` is rounded away in 16 bits (in bfloat16,
  ``1 + 1e-3 == 1``).
- ``compute_dtype``: the forward and backward pass. 16-bit compute halves
  memory traffic and uses the matrix units of GPUs/TPUs (little gain on CPU).
- ``output_dtype``: the model's outputs, where the loss is computed. Keep it
  ``float32`` so softmax, logs and batch sums stay accurate.

The two 16-bit types differ in what they need:

- **bfloat16** keeps float32's 8-bit exponent (range ~1e-38 to ~3e38) with an
  8-bit mantissa (~3 digits): gradients underflow no more than in float32, so
  it needs **no loss scaling**.
- **float16** has a 5-bit exponent (largest 65504, smallest normal ~6.1e-5,
  subnormals to ~6e-8): small gradients underflow to zero, so it needs **loss
  scaling** (`fnn.train.step.loss_scaling`; ``fnn.fit`` turns it on itself
  for a float16 policy).

A step casts params and inputs with ``cast_to_compute`` and the model output
with ``cast_to_output`` (see `fnn.train.step.gradients`).

Only array leaves with a floating dtype are cast or scaled; integer and
boolean leaves (step counters, labels) pass through untouched.

    >>> policy = fnn.train.step.precision.get_policy("params=float32,compute=bfloat16,output=float32")
    >>> policy.cast_to_compute({"w": jnp.ones(2), "step": jnp.array(3)})["w"].dtype
    dtype(bfloat16)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Policy", "get_policy", "select_tree"]

_DTYPE_NAMES = {**dict.fromkeys(["float32", "f32", "single", "full"], "float32"),
                **dict.fromkeys(["bfloat16", "bf16"], "bfloat16"),
                **dict.fromkeys(["float16", "f16", "half"], "float16"),
                **dict.fromkeys(["float64", "f64", "double"], "float64")}


def _to_dtype(value: Any, where: str) -> np.dtype:
    """A floating dtype from a name (``"bf16"``) or a dtype-like (``jnp.float16``)."""
    if isinstance(value, str):
        name = _DTYPE_NAMES.get(value.strip().lower())
        if name is None:
            raise ValueError(f"{where}: unknown dtype name {value!r}; known names: "
                             f"{sorted(_DTYPE_NAMES)}")
        value = name
    try:
        dtype = jnp.dtype(value)
    except TypeError as err:
        raise TypeError(f"{where}: expected a floating dtype, got {value!r}") from err
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{where}: expected a floating dtype, got {dtype}")
    if dtype == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(f"{where}: float64 needs jax.config.update('jax_enable_x64', True)")
    return dtype


def _is_float_array(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _cast_floating(tree: Any, dtype: np.dtype) -> Any:
    return jax.tree.map(
        lambda x: jnp.asarray(x, dtype) if _is_float_array(x) and x.dtype != dtype else x, tree)


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which dtype parameters, computation and outputs use (hashable; a static jit argument).

    Each dtype is a dtype (``jnp.bfloat16``) or a name (``"bf16"``, ``"half"``).

    Args:
      param_dtype: storage dtype of parameters and updates (default float32).
      compute_dtype: dtype of the forward/backward computation (default float32).
      output_dtype: dtype of the model outputs fed to the loss (default float32).

    Examples:
      >>> policy = fnn.train.step.precision.Policy(compute_dtype="float16")
      >>> policy
      Policy(param_dtype=float32, compute_dtype=float16, output_dtype=float32)
      >>> policy.cast_to_compute(jnp.ones(3)).dtype
      dtype('float16')
    """

    param_dtype: Any = jnp.float32
    compute_dtype: Any = jnp.float32
    output_dtype: Any = jnp.float32

    def __post_init__(self):
        for field in ("param_dtype", "compute_dtype", "output_dtype"):
            object.__setattr__(self, field, _to_dtype(getattr(self, field), f"Policy.{field}"))

    def __repr__(self) -> str:
        return (f"Policy(param_dtype={self.param_dtype.name}, compute_dtype="
                f"{self.compute_dtype.name}, output_dtype={self.output_dtype.name})")

    def cast_to_param(self, tree: Any) -> Any:
        """Cast the floating leaves of ``tree`` to ``param_dtype`` (e.g. gradients)."""
        return _cast_floating(tree, self.param_dtype)

    def cast_to_compute(self, tree: Any) -> Any:
        """Cast the floating leaves of ``tree`` to ``compute_dtype`` (params and inputs)."""
        return _cast_floating(tree, self.compute_dtype)

    def cast_to_output(self, tree: Any) -> Any:
        """Cast the floating leaves of ``tree`` to ``output_dtype`` (model outputs)."""
        return _cast_floating(tree, self.output_dtype)


def get_policy(spec: str | Policy) -> Policy:
    """Build a `Policy` from a string (or return a Policy unchanged).

    Grammar:

    - one dtype name, e.g. ``"float32"``, ``"bfloat16"``, ``"float16"``: all
      three dtypes are that one (pure 16-bit training: usually not what you want);
    - ``"mixed_bfloat16"`` / ``"mixed_float16"``: params and outputs float32,
      compute in the 16-bit type (the usual mixed-precision recipe);
    - comma-separated ``key=dtype`` pairs with keys ``params``/``p``,
      ``compute``/``c``, ``output``/``o``, e.g.
      ``"params=float32,compute=bfloat16,output=float32"``. A key left out
      defaults as follows: params float32, compute follows params, output
      follows compute.

    Dtype names: float32/f32/single/full, bfloat16/bf16, float16/f16/half,
    float64/f64/double (float64 only with x64 enabled).

    Args:
      spec: a string as above, or a `Policy`.

    Returns:
      The `Policy`.

    Raises:
      ValueError: an unknown key or dtype name, or a malformed string.
      TypeError: ``spec`` is neither a string nor a Policy.

    Examples:
      >>> fnn.train.step.precision.get_policy("c=bf16")
      Policy(param_dtype=float32, compute_dtype=bfloat16, output_dtype=bfloat16)
      >>> fnn.train.step.precision.get_policy("mixed_float16")
      Policy(param_dtype=float32, compute_dtype=float16, output_dtype=float32)
    """
    if isinstance(spec, Policy):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"get_policy: expected a string or a Policy, got {spec!r}")
    text = spec.strip().lower()
    if text.startswith("mixed_"):
        half = _to_dtype(text[len("mixed_"):], f"get_policy({spec!r})")
        return Policy(jnp.float32, half, jnp.float32)
    if "=" not in text:
        dtype = _to_dtype(text, f"get_policy({spec!r})")
        return Policy(dtype, dtype, dtype)
    keys = {**dict.fromkeys(["params", "param", "p"], "params"),
            **dict.fromkeys(["compute", "c"], "compute"), **dict.fromkeys(["output", "o"], "output")}
    chosen: dict[str, np.dtype] = {}
    for part in text.split(","):
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or name not in keys:
            raise ValueError(f"get_policy: cannot parse {part.strip()!r} in {spec!r}; expected "
                             "'params=<dtype>', 'compute=<dtype>' or 'output=<dtype>'")
        if keys[name] in chosen:
            raise ValueError(f"get_policy: {keys[name]!r} is given twice in {spec!r}")
        chosen[keys[name]] = _to_dtype(value, f"get_policy({spec!r})")
    params = chosen.get("params", jnp.dtype(jnp.float32))
    compute = chosen.get("compute", params)
    return Policy(params, compute, chosen.get("output", compute))


def inference_forward(model: Any, policy: "Policy | None", params: Any, state: Any,
                      x: Any) -> Any:
    """The model's outputs in evaluation mode (``train=False``) under ``policy``: params
    and inputs cast to the compute dtype, outputs to the output dtype (``fnn.predict``,
    ``fnn.evaluate``, in memory or streamed)."""
    if policy is not None:
        params, x = policy.cast_to_compute((params, x))
    out, _ = model.apply(params, state, x, train=False)
    return out if policy is None else policy.cast_to_output(out)


def select_tree(pred: Any, on_true: Any, on_false: Any) -> Any:
    """``on_true`` where the scalar bool ``pred`` holds, else ``on_false``, leaf by leaf.

    Used to skip an update whose gradients were not finite, without a Python
    branch (so it works under ``jit``). The two trees must have the same
    structure, shapes and dtypes.

    Examples:
      >>> fnn.train.step.precision.select_tree(jnp.array(False), {"w": jnp.ones(2)}, {"w": jnp.zeros(2)})
      {'w': Array([0., 0.], dtype=float32)}
    """
    pred = jnp.asarray(pred)
    if pred.shape != () or pred.dtype != jnp.bool_:
        raise ValueError(f"select_tree: pred must be a scalar bool, got shape {pred.shape} "
                         f"and dtype {pred.dtype}")
    if jax.tree.structure(on_true) != jax.tree.structure(on_false):
        raise ValueError("select_tree: on_true and on_false differ in structure: "
                         f"{jax.tree.structure(on_true)} vs {jax.tree.structure(on_false)}")

    def select(path, a, b):
        a, b = jnp.asarray(a), jnp.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            raise ValueError(f"select_tree: leaf {jax.tree_util.keystr(path)} is "
                             f"{a.dtype}{list(a.shape)} in on_true but {b.dtype}{list(b.shape)} "
                             "in on_false")
        return jax.lax.select(pred, a, b)

    return jax.tree_util.tree_map_with_path(select, on_true, on_false)


# The loss scales used with float16 policies live in fnn.train.step.loss_scaling; these
# names stay importable from here, where earlier versions of fnn defined them.
from fnn.train.step.loss_scaling import (DynamicLossScale, NoOpLossScale,  # noqa: E402,F401
                                    StaticLossScale)
