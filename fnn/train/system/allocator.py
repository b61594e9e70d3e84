"""An explicit, opt-in tuning of glibc's malloc for XLA:CPU's per-call temporaries.

XLA:CPU allocates its large temporaries on every call of a compiled program.
With glibc's default malloc, blocks above the mmap threshold are mapped on
each call, page-faulted while the program runs, and unmapped after it, every
step. Raising the mmap and trim thresholds keeps such blocks in the heap,
where the next call reuses them. fnn never changes this by itself: a process's
allocator belongs to the user; call `tune_cpu_allocator` (or set the
environment variables it mirrors) to opt in. Measured gains are in
``docs/training.md`` ("CPU allocator").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_THRESHOLD = 1 << 30          # 1 GiB, the largest value glibc's mmap threshold takes


def _glibc_mallopt():
    """glibc's ``mallopt``, or ``None`` on another C library (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version  # only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    del version
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def tune_cpu_allocator(mmap_threshold: int = _DEFAULT_THRESHOLD,
                       trim_threshold: int = _DEFAULT_THRESHOLD) -> bool:
    """Raise glibc's mmap and trim thresholds for this process (opt-in; Linux/glibc only).

    The same as starting Python with ``MALLOC_MMAP_THRESHOLD_=1073741824
    MALLOC_TRIM_THRESHOLD_=1073741824``: allocations below ``mmap_threshold``
    come from the heap instead of fresh ``mmap`` calls, and the heap keeps up
    to ``trim_threshold`` bytes of freed memory instead of returning it to the
    system. XLA:CPU's large per-call temporaries are then reused, not
    page-faulted anew every step. The cost is memory: freed blocks stay with
    the process. It leaves ``MALLOC_ARENA_MAX`` alone (one arena made XLA's
    threads wait for each other here: small-model steps ran 1.2-1.7x slower).

    Call it once, at the start of a script; it takes effect for later
    allocations. Nothing happens on other platforms or C libraries.

    Args:
      mmap_threshold: bytes; blocks at least this large are still mapped
        (at most 32 MiB on 32-bit systems, 1 GiB here; glibc refuses more).
      trim_threshold: bytes of free memory at the top of the heap kept for reuse.

    Returns:
      ``True`` if glibc took both settings, ``False`` when there is no glibc
      or it refused a value (nothing changed then, or only the first setting).

    Raises:
      ValueError: a threshold that is not a positive int.

    Examples:
      At the top of a training script (it returns ``False`` off glibc)::

          import fnn
          fnn.train.tune_cpu_allocator()

      >>> fnn.train.tune_cpu_allocator(mmap_threshold=0)
      Traceback (most recent call last):
      ValueError: tune_cpu_allocator: mmap_threshold must be an int in [1, 2**31), got 0
    """
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2 ** 31:
            raise ValueError(f"tune_cpu_allocator: {name} must be an int in [1, 2**31), "
                             f"got {value!r}")
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold))
