"""fnn.count_params / fnn.summary: hand-computed counts, bytes, no computation."""

import dataclasses
import time

import jax
import jax.numpy as jnp
import pytest

import fnn
from fnn.summary import SummaryRow, count_bytes

KEY = jax.random.key(0)


def mlp(*sizes):
    layers = []
    for n in sizes[1:-1]:
        layers += [fnn.Dense(n), fnn.Activation("relu")]
    return fnn.Sequential(layers + [fnn.Dense(sizes[-1])])


def test_two_two_one_network_has_nine_parameters():
    # hidden: 2x2 weights + 2 biases = 6; output: 2x1 + 1 = 3
    model = mlp(2, 2, 1)
    params, _ = model.init(KEY, jnp.zeros((1, 2)))
    assert fnn.count_params(params) == 9
    assert count_bytes(params) == 36


def test_mnist_mlp_count_bytes_and_rows_on_shape_struct():
    model = mlp(784, 512, 512, 10)
    x = jax.ShapeDtypeStruct((128, 784), jnp.float32)
    params, _ = jax.eval_shape(model.init, KEY, x)
    expected = (784 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)
    assert expected == 669_706
    assert fnn.count_params(params) == 669_706
    assert count_bytes(params) == 4 * 669_706
    rows = fnn.summary_rows(model, x)
    assert [r.path for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r.params for r in rows] == [401_920, 0, 262_656, 0, 5_130]
    assert [r.bytes for r in rows] == [4 * 401_920, 0, 4 * 262_656, 0, 4 * 5_130]
    assert [r.output_shape for r in rows] == [(128, 512)] * 4 + [(128, 10)]
    assert rows[0] == SummaryRow("0", "Dense(features=512)", (128, 512), jnp.dtype("float32"),
                                 401_920, 4 * 401_920, 0)
    text = fnn.summary(model, x)
    assert "Total: 669,706 parameters (2.6 MiB)" in text
    assert "Dense(features=512)" in text and "(128, 10)" in text


def test_nested_sequential_rows_show_leaf_paths():
    model = fnn.Sequential([fnn.Flatten(), fnn.Sequential([fnn.Dense(3), fnn.Dropout(0.5)]),
                            fnn.Dense(1)])
    rows = fnn.summary_rows(model, jnp.zeros((4, 2, 2)))
    assert [(r.path, r.layer, r.output_shape, r.params) for r in rows] == [
        ("0", "Flatten()", (4, 4), 0), ("1/0", "Dense(features=3)", (4, 3), 15),
        ("1/1", "Dropout(rate=0.5)", (4, 3), 0), ("2", "Dense(features=1)", (4, 1), 4)]
    assert "1/0" in fnn.summary(model, jnp.zeros((4, 2, 2)))


def test_summary_of_huge_model_is_instant():
    model = mlp(100_000, 100_000, 100_000)                 # 2e10 parameters, 80 GB
    start = time.perf_counter()
    rows = fnn.summary_rows(model, jax.ShapeDtypeStruct((1, 100_000), jnp.float32))
    assert time.perf_counter() - start < 5.0
    assert sum(r.params for r in rows) == 2 * (100_000 * 100_000 + 100_000)


def test_plain_function_with_own_params_and_count_on_structs():
    def apply(params, x):
        return x @ params["w"]

    params = {"w": jnp.zeros((3, 2))}
    rows = fnn.summary_rows(apply, jnp.zeros((5, 3)), params=params)
    assert len(rows) == 1 and rows[0].path == "" and rows[0].output_shape == (5, 2)
    assert rows[0].params == 6
    assert "-     FunctionLayer" in fnn.summary(apply, jnp.zeros((5, 3)), params=params)
    structs = {"a": jax.ShapeDtypeStruct((2, 3), jnp.bfloat16), "b": [jnp.zeros(4)]}
    assert fnn.count_params(structs) == 10
    assert count_bytes(structs) == 2 * 6 + 4 * 4
    assert fnn.count_params({}) == 0


@dataclasses.dataclass(frozen=True)
class RunningMean(fnn.Layer):
    """Test layer with 3 state values per feature and no parameters."""

    def init(self, key, x):
        return {}, {"mean": jnp.zeros(x.shape[-1:]), "var": jnp.ones(x.shape[-1:]),
                    "count": jnp.zeros(x.shape[-1:])}

    def apply(self, params, state, x, *, key=None, train=False):
        return x, state


def test_state_column_and_error_path():
    model = fnn.Sequential([fnn.Dense(4), RunningMean()])
    text = fnn.summary(model, jnp.zeros((2, 3)))
    assert text.splitlines()[0].split()[-1] == "State"
    assert text.endswith("Total: 16 parameters (64 B), 12 state values")
    params, _ = fnn.Sequential([fnn.Dense(4), fnn.Dense(2)]).init(KEY, jnp.zeros((2, 5)))
    with pytest.raises(fnn.LayerValueError, match=r"Dense at path '0'.*\(batch, \.\.\., 5\)"):
        fnn.summary(fnn.Sequential([fnn.Dense(4), fnn.Dense(2)]), jnp.zeros((2, 3)),
                    params=params)


def test_summary_lines_fit_100_columns_unless_asked_not_to():
    model = fnn.Sequential({"body": fnn.Sequential([
        fnn.Conv2D(32, 3, padding="same", w_init="he_normal", b_init="zeros"),
        fnn.Activation("relu")]), "head": fnn.Dense(10, w_init="glorot_normal")})
    x = jnp.zeros((1, 8, 8, 1))
    cut = fnn.summary(model, x)
    assert max(len(line) for line in cut.splitlines()) <= 100 and "..." in cut
    whole = fnn.summary(model, x, width=None)
    assert "w_init=he_normal()" in whole and max(len(line) for line in whole.splitlines()) > 100
