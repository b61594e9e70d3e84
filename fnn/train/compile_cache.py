"""Opt-in persistent compilation cache: reuse compiled programs across Python processes.

Compiling the training epoch of a large model can take seconds to minutes on
an accelerator. With the cache enabled, JAX stores every compiled program in
``path`` (keyed by the program, the JAX version and the device), and a later
process running the same fit loads it instead of compiling again.
"""

from __future__ import annotations

import os

import jax
from jax.experimental.compilation_cache import compilation_cache


def enable_compilation_cache(path: str | os.PathLike, *, min_compile_time_secs: float = 0.0,
                             min_entry_size_bytes: int = 0) -> str:
    """Store compiled programs in ``path`` and reuse them in later processes.

    A process-wide JAX setting (``jax_compilation_cache_dir``): call it once at
    the start of a script, before the first compilation. By default every
    program is cached, even cheap ones (JAX's own default skips programs that
    compiled in under a second).

    Args:
      path: a directory (created if missing); may be shared by many runs.
      min_compile_time_secs: only cache programs that took at least this long
        to compile.
      min_entry_size_bytes: only cache programs at least this large.

    Returns:
      The absolute path of the cache directory.

    Raises:
      ValueError: a negative threshold.

    Example:
      >>> import os, tempfile
      >>> cache_dir = fnn.train.enable_compilation_cache(tempfile.mkdtemp())
      >>> _ = jax.jit(lambda x: 2 * x + 1)(jnp.arange(3.0))
      >>> len(os.listdir(cache_dir)) > 0
      True
      >>> fnn.train.disable_compilation_cache()
    """
    if min_compile_time_secs < 0 or min_entry_size_bytes < 0:
        raise ValueError("enable_compilation_cache: thresholds must be >= 0, got "
                         f"min_compile_time_secs={min_compile_time_secs}, "
                         f"min_entry_size_bytes={min_entry_size_bytes}")
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", int(min_entry_size_bytes))
    return path


def disable_compilation_cache() -> None:
    """Stop using the persistent compilation cache in this process.

    Restores JAX's defaults (no cache directory, cache only programs that
    compiled in at least one second). Programs already cached stay on disk.

    Returns:
      ``None``.

    Example:
      >>> fnn.train.disable_compilation_cache()
    """
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()
