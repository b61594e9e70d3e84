"""Counting the XLA programs a block of code makes, with or without the persistent cache.

The suite runs with JAX's persistent compilation cache on (the root
``conftest.py``). JAX records its compile-time event around "compile, or get
from the persistent cache", so one event is one program made either way, and
a cache hit is also recorded, just before it. ``programs_built`` tells the
two apart, so a test can assert "nothing is built here" (both count) and a
cache test can assert "loaded, not compiled".
"""

import contextlib

import jax

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
PERSISTENT_CACHE_HIT = "/jax/compilation_cache/cache_hits"


@contextlib.contextmanager
def programs_built():
    """Collects one entry per XLA program made inside the block.

    Yields:
      A list that fills with ``"compiled"`` (XLA compiled a program) and
      ``"loaded"`` (a program came from the persistent cache) entries.
    """
    built = []
    hit = [False]

    def on_event(event, **kwargs):
        if event == PERSISTENT_CACHE_HIT:
            hit[0] = True

    def on_duration(event, duration, **kwargs):
        if event == BACKEND_COMPILE:
            built.append("loaded" if hit[0] else "compiled")
            hit[0] = False

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
    try:
        yield built
    finally:
        jax.monitoring.unregister_event_duration_listener(on_duration)
        jax.monitoring.unregister_event_listener(on_event)
