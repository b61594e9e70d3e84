"""Test-wide settings: strict shapes (no silent rank promotion), names for doctests, and a
persistent compilation cache shared by every run of the suite on this machine.

The cache lives outside the repository, in ``$FNN_TEST_CACHE`` (default
``~/.cache/fnn/jax-tests``), so a second run, or CI in a fresh clone on the same
machine, loads the XLA programs the first one compiled instead of compiling them
again. ``FNN_TEST_CACHE=off`` runs the suite without it.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

jax.config.update("jax_numpy_rank_promotion", "raise")

TEST_CACHE_ENV = "FNN_TEST_CACHE"


def _enable_suite_cache():
    """Turns the suite's cache on (before any test compiles); its folder, or ``None`` if off."""
    setting = os.environ.get(TEST_CACHE_ENV, "").strip()
    if setting.lower() == "off":
        return None
    return fnn.train.enable_compilation_cache(setting or os.path.join("~", ".cache", "fnn",
                                                                      "jax-tests"))


SUITE_CACHE = _enable_suite_cache()


@pytest.fixture(autouse=True)
def _suite_compilation_cache():
    """Puts the suite's cache back after a test (or doctest) that switched or disabled it."""
    yield
    if fnn.train.compilation_cache_path() != SUITE_CACHE:
        if SUITE_CACHE is None:
            fnn.train.disable_compilation_cache()
        else:
            fnn.train.enable_compilation_cache(SUITE_CACHE)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(jax=jax, jnp=jnp, np=np, fnn=fnn)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Frees the XLA programs a test module compiled once the module is done.

    Each compiled CPU program holds memory mappings of its machine code, and a process
    may hold at most ``vm.max_map_count`` (65,530 here) of them: the whole suite in one
    process reached ~55,000 and crashed in XLA (a segfault or abort while reading or
    writing the compilation cache). The persistent cache makes a later recompile a load.
    """
    yield
    jax.clear_caches()
