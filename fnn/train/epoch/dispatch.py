"""How an epoch is dispatched to the device: one scanned program, unrolled chunks, or steps.

Running many training steps in one compiled call removes the per-step Python
and dispatch overhead that dominates small models (an MLP 64-32-10 step costs
~24 µs dispatched one by one, ~11 µs inside one ``lax.scan``). But on CPU,
XLA runs convolutions inside a while loop (``lax.scan``) ~25x slower than
outside one, while a fully *unrolled* chunk of steps stays fast. So:

- ``"scan"``: the whole epoch (or chunks of ``steps_per_dispatch`` steps) is
  one ``lax.scan``; the default for every model on GPU/TPU and for
  loop-friendly models (MLPs, RNNs) on CPU.
- ``"unroll"``: chunks of ``steps_per_dispatch`` steps (default
  `DEFAULT_UNROLL`) written out one after another in one compiled call.
  Compiling ``k`` unrolled steps costs about ``k`` times one step (MLP
  784-512-512-10: 3.2 s for 8 steps against 1.0 s), so it pays only where a
  step is cheap and the dispatch is not.
- ``"step"``: one compiled call per step (``"unroll"`` with chunks of 1); the
  default on CPU for models containing a layer with
  ``loop_friendly_on_cpu = False``. fnn's grouped and transposed
  convolutions set it (its ``groups=1`` convolutions run as matmuls on CPU,
  which scan well), and so should a layer of yours built on ``lax.conv``:
  such steps take milliseconds, so the ~0.1 ms dispatch per step costs
  little, and they compile once (a 2-conv CNN written with ``lax.conv`` on
  CPU: 9.7 ms per step scanned, 2.4 ms step by step, 2.3 ms in unrolled
  chunks of 4; ``benchmarks/bench_fit.py``).

A layer class opts out of scanning on CPU with a class attribute
``loop_friendly_on_cpu = False``; `prefers_unrolled` looks for it in
the model and in every layer nested inside it (dataclass fields holding a
layer or a list/tuple/dict of layers, e.g. ``Sequential.layers``).
"""

from __future__ import annotations

from typing import Any

import jax

from fnn.layers.base import child_layers
from fnn.validation import check_int

STRATEGIES = ("scan", "unroll", "step")
DEFAULT_UNROLL = 8
"""Steps per dispatch of the ``"unroll"`` strategy when none is given."""


def loop_friendly_on_cpu(model: Any) -> bool:
    """True unless ``model`` or a layer inside it sets ``loop_friendly_on_cpu = False``."""
    if not getattr(model, "loop_friendly_on_cpu", True):
        return False
    return all(loop_friendly_on_cpu(child) for child in child_layers(model))


def prefers_unrolled(model: Any, backend: str | None = None) -> bool:
    """Whether ``model`` trains faster outside an XLA loop (steps or unrolled chunks) than in one.

    True only on the CPU backend for a model containing a layer that is not
    loop friendly there (``loop_friendly_on_cpu = False``, e.g. a layer built on ``lax.conv``).

    Args:
      model: an fnn layer (e.g. a `fnn.Sequential`).
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``; default ``jax.default_backend()``.

    Returns:
      ``bool``.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(4), fnn.Activation("relu"), fnn.Dense(1)])
      >>> fnn.train.epoch.dispatch.prefers_unrolled(model, "cpu")
      False
    """
    backend = backend or jax.default_backend()
    return backend == "cpu" and not loop_friendly_on_cpu(model)


def resolve(model: Any, strategy: str | None, steps_per_dispatch: int | None,
            backend: str | None = None) -> tuple[str, int | None]:
    """The ``(mode, chunk)`` an epoch runs with.

    ``mode`` is ``"scan"`` or ``"unroll"``; ``chunk`` the number of steps per
    compiled call (``None``: the whole epoch in one call).

    Args:
      model: the model (its layers decide the default).
      strategy: ``None`` (choose), ``"scan"``, ``"unroll"`` or ``"step"``.
      steps_per_dispatch: steps per compiled call, or ``None`` for the default
        (the whole epoch for ``"scan"``, `DEFAULT_UNROLL` for ``"unroll"``).
      backend: the JAX backend; default ``jax.default_backend()``.

    Returns:
      ``(mode, chunk)``.

    Raises:
      ValueError: unknown strategy, or ``steps_per_dispatch`` not a positive int.

    Examples:
      >>> fnn.train.epoch.dispatch.resolve(fnn.Dense(2), None, None, "cpu")
      ('scan', None)
      >>> fnn.train.epoch.dispatch.resolve(fnn.Dense(2), "step", None)
      ('unroll', 1)
    """
    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"fit: strategy must be one of {STRATEGIES} or None, got {strategy!r}")
    check_int("fit", "steps_per_dispatch", steps_per_dispatch, allow_none=True)
    if strategy is None:
        strategy = "step" if prefers_unrolled(model, backend) else "scan"
    if strategy == "step":
        return "unroll", 1
    if strategy == "unroll":
        return "unroll", steps_per_dispatch or DEFAULT_UNROLL
    return "scan", steps_per_dispatch
