"""Test-wide settings: strict shapes (no silent rank promotion), names for doctests, and a
persistent compilation cache shared by every run of the suite on this machine.

The cache lives outside the repository, in ``$FNN_TEST_CACHE`` (default
``~/.cache/fnn/jax-tests``), so a second run, or CI in a fresh clone on the same
machine, loads the XLA programs the first one compiled instead of compiling them
again. ``FNN_TEST_CACHE=off`` runs the suite without it.
"""

import os

# XLA's LLVM back end at optimisation level 0: the suite's programs are tiny and run for
# milliseconds, and compiling them is most of the suite's time; level 0 halves it (the
# programs compute the same math; fnn's users get XLA's default level). Set before JAX
# starts its backend, and inherited by the suite's subprocesses.
# FNN_TEST_XLA_OPT=default keeps XLA's default level.
if os.environ.get("FNN_TEST_XLA_OPT", "").strip().lower() != "default" and \
        "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fnn  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

TEST_CACHE_ENV = "FNN_TEST_CACHE"

# Tests of exact-number promises (bit for bit across two programs) hold at XLA's default
# codegen, the level users run at; at level 0 a reduction may be ordered otherwise. They
# carry this mark, are skipped in a level-0 run and run together in one subprocess at the
# default level (tests/test_default_codegen.py).
FAST_CODEGEN = "xla_backend_optimization_level=0" in os.environ.get("XLA_FLAGS", "")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "default_codegen: an exact-number promise, checked at XLA's default "
                   "codegen (in a subprocess when the suite runs at level 0)")


# The slowest test files (seconds of a cold run on a 2-core CPU; in a warm run the ones
# that start subprocesses lead), collected first: the
# workers (-n 2 --dist loadfile) take whole files in collection order, so a long file
# taken last would leave the other worker idle at the end.
SLOW_FILES = {"tests/test_layers_shapes.py": 80, "tests/test_default_codegen.py": 74,
              "tests/test_examples.py": 54, "tests/test_train_resume.py": 35,
              "tests/test_train_ensemble.py": 31, "tests/test_train_multiprocess.py": 23,
              "tests/test_train_progress.py": 22, "tests/test_train_streaming.py": 22,
              "tests/test_optim_rules.py": 22, "docs/many_models.md": 21,
              "tests/test_run_cli.py": 21, "tests/test_train_data_parallel.py": 20}


def pytest_collection_modifyitems(config, items):
    root = str(config.rootpath)
    weight = {id(item): SLOW_FILES.get(os.path.relpath(str(item.path), root), 0)
              for item in items}
    items.sort(key=lambda item: -weight[id(item)])      # stable: each file keeps its order
    if not FAST_CODEGEN:
        return
    skip = pytest.mark.skip(reason="an exact-number promise: checked at XLA's default codegen "
                                   "by tests/test_default_codegen.py")
    for item in items:
        if item.get_closest_marker("default_codegen"):
            item.add_marker(skip)


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
