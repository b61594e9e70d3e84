"""Two processes on localhost with jax.distributed (4 emulated CPU devices each, gloo
collectives), each passing only its half of the data, train data parallel to the params of
one process with 8 devices and all the data, and agree bit for bit with each other; the same
streamed from memory-mapped files, each process reading only its own rows of each batch."""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "multiprocess_check.py"



def _with_devices(count: int) -> str:
    """The suite's XLA_FLAGS (conftest.py) with ``count`` emulated CPU devices."""
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_like_one(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    port = str(_free_port())
    procs = [subprocess.Popen(
        [sys.executable, str(SCRIPT), port, str(i), str(tmp_path / f"p{i}.npz")],
        env={**env, "XLA_FLAGS": _with_devices(4)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    single = subprocess.run(
        [sys.executable, str(SCRIPT), "single", str(tmp_path / "single.npz")],
        env={**env, "XLA_FLAGS": _with_devices(8)},
        capture_output=True, text=True, timeout=300)
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        errors.append(err[-2000:])
    assert single.returncode == 0, single.stderr[-3000:]
    p0, p1, one = (np.load(tmp_path / f"{name}.npz") for name in ("p0", "p1", "single"))
    assert int(p0["devices"]) == 8 and int(p0["processes"]) == 2
    assert int(one["devices"]) == 8 and int(one["processes"]) == 1
    arrays = [k for k in p0.files if k.startswith("arr_")]
    for k in arrays:
        np.testing.assert_array_equal(p0[k], p1[k])                    # the processes agree
        np.testing.assert_allclose(p0[k], one[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p0["loss"], one["loss"], rtol=1e-6)
    np.testing.assert_allclose(p0["val_loss"], one["val_loss"], rtol=1e-5)
    # Streamed from files that every process maps whole, each reading only its own rows of
    # each batch: the processes agree, and equal one process streaming everything.
    streamed = [k for k in p0.files if k.startswith("stream_")]
    assert len(streamed) == len(arrays) + 2
    assert int(p0["refused"]) == int(p1["refused"]) == 1, errors     # different files per process
    for k in streamed:
        np.testing.assert_array_equal(p0[k], p1[k])
        np.testing.assert_allclose(p0[k], one[k], rtol=1e-5, atol=1e-6)
    for i in range(len(arrays)):      # and the in-memory run, up to the order of additions
        np.testing.assert_allclose(one[f"stream_{i}"], one[f"arr_{i}"], rtol=1e-5, atol=1e-6)
