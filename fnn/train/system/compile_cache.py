"""Opt-in persistent compilation cache: reuse compiled programs across Python processes.

Compiling the training epoch of a large model can take seconds to minutes on
an accelerator. With the cache enabled, JAX stores every compiled program in
a folder (keyed by the program, the JAX version, the compile options and the
device), and a later process running the same fit loads it instead of
compiling again. Tracing and lowering still run in every process; only XLA's
compilation is skipped.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import jax
from jax.experimental.compilation_cache import compilation_cache

DEFAULT_CACHE_ENV = "FNN_CACHE"
DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "fnn", "jax")


def default_cache_path() -> str:
    """The folder `enable_compilation_cache` uses when given no path.

    Returns:
      ``$FNN_CACHE`` if that variable is set and not empty, else
      ``~/.cache/fnn/jax``; ``~`` expanded, made absolute.
    """
    path = os.environ.get(DEFAULT_CACHE_ENV) or DEFAULT_CACHE_DIR
    return os.path.abspath(os.path.expanduser(path))


def _writable_folder(path: str) -> str | None:
    """Creates ``path`` if needed and writes a probe file in it; returns the reason it failed."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".fnn-probe-"):
            pass
    except OSError as error:
        return f"{type(error).__name__}: {error.strerror or error}"
    return None


def enable_compilation_cache(path: str | os.PathLike | None = None, *,
                             min_compile_time_secs: float = 0.0,
                             min_entry_size_bytes: int = 0) -> str | None:
    """Store compiled programs in ``path`` and reuse them in later processes.

    A process-wide JAX setting (``jax_compilation_cache_dir``); best called
    once at the start of a script. A later call takes effect at once: JAX's
    cache is re-initialised, so the programs compiled after it go to (and are
    looked up in) the new folder. By default every program is cached, even
    cheap ones (JAX's own default skips programs that compiled in under a
    second).

    A folder that cannot be created or written is not an error: a
    ``RuntimeWarning`` names it and the process goes on without a persistent
    cache (programs compile as usual).

    Args:
      path: a directory (created if missing); may be shared by many runs.
        ``None`` is ``$FNN_CACHE`` if set, else ``~/.cache/fnn/jax``.
      min_compile_time_secs: only cache programs that took at least this long
        to compile.
      min_entry_size_bytes: only cache programs at least this large.

    Returns:
      The absolute path of the cache directory, or ``None`` when it could
      not be used (after the warning).

    Raises:
      ValueError: a negative threshold.

    Examples:
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
    path = (default_cache_path() if path is None
            else os.path.abspath(os.path.expanduser(os.fspath(path))))
    problem = _writable_folder(path)
    if problem is not None:
        disable_compilation_cache()
        warnings.warn(f"enable_compilation_cache: cannot use {path!r} as the compilation cache "
                      f"({problem}); going on without a persistent cache", RuntimeWarning,
                      stacklevel=2)
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_secs))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", int(min_entry_size_bytes))
    # JAX opens its cache once per process, at the first compile after a reset: without
    # this, a second call would keep writing to the first folder.
    compilation_cache.reset_cache()
    return path


def compilation_cache_path() -> str | None:
    """The folder compiled programs are cached in now, or ``None`` when the cache is off.

    Returns:
      ``jax_compilation_cache_dir`` (set by `enable_compilation_cache` or
      ``JAX_COMPILATION_CACHE_DIR``), or ``None``.

    Examples:
      >>> fnn.train.disable_compilation_cache()
      >>> fnn.train.compilation_cache_path() is None
      True
    """
    if not jax.config.jax_enable_compilation_cache:
        return None
    return jax.config.jax_compilation_cache_dir or None


def disable_compilation_cache() -> None:
    """Stop using the persistent compilation cache in this process.

    Restores JAX's defaults (no cache directory, cache only programs that
    compiled in at least one second). Programs already cached stay on disk.

    Returns:
      ``None``.

    Examples:
      >>> fnn.train.disable_compilation_cache()
    """
    jax.config.update("jax_compilation_cache_dir", None)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()
