"""The suite compiles at XLA's backend optimisation level 0 (conftest.py: it halves the
compile time); the tests marked ``default_codegen`` check exact-number promises (bit for
bit across two different programs) that hold at the default level users run at, so they
run here, together, in one subprocess at that level."""

import os
import pathlib
import subprocess
import sys

import pytest


FAST_CODEGEN = "xla_backend_optimization_level=0" in os.environ.get("XLA_FLAGS", "")
ROOT = pathlib.Path(__file__).resolve().parent.parent
FILES = ["tests/test_train_streaming.py", "tests/test_train_fit.py",
         "tests/test_activations.py"]


@pytest.mark.skipif(not FAST_CODEGEN, reason="the suite runs at the default level: the "
                                             "marked tests ran in it")
def test_exact_number_promises_hold_at_xlas_default_codegen():
    env = {**os.environ, "FNN_TEST_XLA_OPT": "default"}
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
        "--xla_backend_optimization_level=0", "").strip()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-m",
                          "default_codegen", *FILES], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # every marked test ran there (none skipped), and only those
    assert " passed" in run.stdout and "deselected" in run.stdout
    assert "skipped" not in run.stdout and "error" not in run.stdout.lower()
