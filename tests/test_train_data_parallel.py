"""Data parallel fit over 8 emulated CPU devices (a subprocess: the device count is fixed when
JAX starts) equals fit on one device, BatchNorm's statistics included; clear mesh errors."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import fnn

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "data_parallel_check.py"


@pytest.fixture(scope="module")
def eight_devices():
    """The JSON line of scripts/data_parallel_check.py run over 8 emulated devices."""
    env = {**os.environ, "XLA_FLAGS": _with_devices(8),
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])



def _with_devices(count: int) -> str:
    """The suite's XLA_FLAGS (conftest.py) with ``count`` emulated CPU devices."""
    return f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"

def test_fit_over_eight_devices_equals_one_device(eight_devices):
    result = eight_devices
    assert result["devices"] == 8                         # params live on all 8 devices
    assert result["max_abs_diff"] < 1e-5
    np.testing.assert_allclose(result["loss_many"], result["loss_one"], rtol=1e-5)
    one, many = result["scores"]
    assert one.keys() == many.keys() and all(abs(one[k] - many[k]) < 1e-6 for k in one)
    assert result["prediction_diff"] < 1e-6                  # evaluate/predict with mesh=
    batch_error, axis_error, split_error = result["errors"]
    assert "batch_size (30) must be divisible by the 8 devices" in batch_error
    assert "needs an axis named 'data'" in axis_error
    assert "splits dimension 0 of '0/w' (shape (5, 16)) over 2 devices" in split_error


def test_parameters_split_over_a_model_axis_equal_one_device(eight_devices):
    """param_sharding: the parameters and their Adam moments keep the requested
    PartitionSpec; the count stays replicated; the numbers are one device's."""
    assert eight_devices["sharded_diff"] < 1e-5
    specs = eight_devices["specs"]
    expected = {"0": {"w": "P(None, 'model')"}, "1": {"scale": "P('model',)", "bias": "P('model',)"},
                "2": {}, "3": {"w": "P('model',)", "b": "P()"}}    # trailing None dropped
    assert specs["params"] == expected and specs["mu"] == expected
    assert specs["count"] == "P()"


@pytest.mark.parametrize("kwargs, message", [
    ({"param_sharding": {"w": P("model")}}, "the mesh has no axis 'model'"),
    ({"param_sharding": {"9/*": P()}}, "pattern '9/\\*' matches no parameter; the parameter "
                                        "paths are: b, w"),
    ({"param_sharding": {"b": P(None, "data")}}, "more entries than dimensions"),
    ({"param_sharding": {"w": "data"}}, "maps path patterns \\(str\\) to"),
    ({"param_sharding": {"w": P()}, "mesh": None}, "param_sharding needs a mesh="),
])
def test_param_sharding_errors(kwargs, message):
    x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int32)
    options = {"mesh": jax.make_mesh((1,), ("data",)), **kwargs}
    with pytest.raises((ValueError, TypeError), match=message):
        fnn.fit(fnn.Dense(2), "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1), (x, y),
                epochs=1, batch_size=4, key=jax.random.key(0), progress=False, **options)


def test_mesh_argument_errors_on_one_device():
    x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int32)
    with pytest.raises(ValueError, match="mesh must be a jax.sharding.Mesh"):
        fnn.fit(fnn.Dense(2), "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1), (x, y),
                epochs=1, batch_size=4, key=jax.random.key(0), progress=False, mesh="data")
    mesh = jax.make_mesh((1,), ("data",))
    result = fnn.fit(fnn.Dense(2), "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1), (x, y),
                     epochs=1, batch_size=4, key=jax.random.key(0), progress=False, mesh=mesh)
    assert result.params["w"].shape == (2, 2)
