"""Run-to-run identical results on GPU: XLA's determinism flag, set before JAX starts.

On CPU, XLA's programs are deterministic already. On GPU some kernels
(scatter-adds, some reductions, autotuned convolution algorithms) are not,
unless ``--xla_gpu_deterministic_ops=true`` is in ``XLA_FLAGS`` when the
backend starts; `use_deterministic_ops` puts it there.
"""

from __future__ import annotations

import os

FLAG = "--xla_gpu_deterministic_ops=true"


def use_deterministic_ops() -> str:
    """Add XLA's GPU determinism flag to ``XLA_FLAGS``; the new ``XLA_FLAGS``.

    Call it before anything runs a JAX computation (the flag is read once, when the
    backend starts). Slower on GPU; no effect on CPU.

    Raises:
      RuntimeError: JAX's backend already started, so the flag would not take effect
        (set ``XLA_FLAGS`` in the environment instead).
    """
    from jax._src import xla_bridge
    flags = os.environ.get("XLA_FLAGS", "")
    if FLAG in flags.split():
        return flags
    if xla_bridge.backends_are_initialized():
        raise RuntimeError(f"use_deterministic_ops: JAX's backend has already started, so "
                           f"XLA would ignore the flag; call it before the first JAX "
                           f"computation, or start Python with XLA_FLAGS={FLAG}")
    os.environ["XLA_FLAGS"] = (flags + " " + FLAG).strip()
    return os.environ["XLA_FLAGS"]
