"""fnn.checkpoint: round trips of every dtype and nesting, atomic writes (an exception and a
real kill mid-save keep the previous file), the mismatch diff, corrupt files, the Manager."""

import os
import signal
import subprocess
import sys
from typing import NamedTuple

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import fnn
from fnn.checkpoint import safetensors_format

DTYPES = [np.float32, np.float16, jnp.bfloat16, np.int8, np.int32, np.bool_, np.float64,
          np.uint8, np.int64]


class Pair(NamedTuple):        # a user's own NamedTuple (not fnn's)
    a: object
    b: object


def assert_same_tree(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(jax.random.key_data(x), jax.random.key_data(y))
        else:
            assert np.asarray(x).dtype == np.asarray(y).dtype
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_of_every_dtype_keys_and_nesting(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {np.dtype(d).name: (rng.normal(size=(2, 3)) * 10).astype(d) for d in DTYPES}
    opt = fnn.optim.adam(1e-3)
    opt_state = opt.init({"w": jnp.ones((2, 2))})
    tree = {"arrays": arrays, "scalar": np.float32(2.5), "zero_size": np.zeros((0, 3)),
            "keys": [jax.random.key(1), jax.random.split(jax.random.key(2), 3),
                     jax.random.key(3, impl="rbg")],
            "raw_key": jax.random.PRNGKey(4),
            "opt_state": opt_state, "nested": ({"x": [jnp.arange(3), ()]}, [], {}, None),
            "mine": Pair(jnp.ones(2), {"c": 3}), "python": [1, 2.5, "text", True]}
    path = tmp_path / "tree.safetensors"
    fnn.checkpoint.save(path, tree, config={"lr": 0.1, "layers": [4, 2]}, step=7, epoch=3)
    back = fnn.checkpoint.load(path)
    assert type(back["opt_state"][0]) is type(opt_state[0])          # fnn's own class
    assert type(back["mine"]).__name__ == "Pair" and back["mine"]._fields == ("a", "b")
    assert back["python"] == [1, 2.5, "text", True] and back["nested"][1:] == ([], {}, None)
    expected = {**tree, "mine": type(back["mine"])(*tree["mine"])}
    assert_same_tree(back, expected)
    assert_same_tree(fnn.checkpoint.load(path, like=tree), tree)     # like's own classes
    meta = fnn.checkpoint.info(path)
    assert (meta.config, meta.step, meta.epoch) == ({"lr": 0.1, "layers": [4, 2]}, 7, 3)
    assert meta.arrays["arrays/bfloat16"] == ((2, 3), "bfloat16")
    assert meta.arrays["keys/1"] == ((3, 2), "uint32") and set(meta.versions) >= {"fnn", "jax"}


leaves = st.sampled_from(DTYPES).flatmap(lambda d: st.lists(
    st.integers(0, 3), min_size=0, max_size=3).map(
        lambda shape: (np.arange(int(np.prod(shape))) % 7).astype(d).reshape(shape)))
trees = st.recursive(leaves, lambda children: st.one_of(
    st.lists(children, max_size=3), st.lists(children, max_size=3).map(tuple),
    st.dictionaries(st.text("abc", min_size=1, max_size=3), children, max_size=3)),
    max_leaves=8)


@settings(max_examples=40, deadline=None)
@given(trees)
def test_any_nesting_round_trips(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("h") / "t.safetensors"
    fnn.checkpoint.save(path, tree)
    assert_same_tree(fnn.checkpoint.load(path), tree)


def test_files_are_plain_safetensors_readable_without_fnn(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "m.safetensors"
    params = {"0": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
              "h": jnp.ones(2, jnp.bfloat16)}
    fnn.checkpoint.save(path, params)
    read = safetensors_numpy.load_file(str(path))
    np.testing.assert_array_equal(read["0/w"], params["0"]["w"])
    assert read["h"].dtype == jnp.bfloat16


def test_an_exception_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    fnn.checkpoint.save(path, {"w": np.ones(3)}, epoch=1)
    write = safetensors_format.write_array
    calls = []

    def failing(f, array):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        write(f, array)

    monkeypatch.setattr(safetensors_format, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        fnn.checkpoint.save(path, {"a": np.zeros(3), "b": np.zeros(4)}, epoch=2)
    assert fnn.checkpoint.info(path).epoch == 1
    np.testing.assert_array_equal(fnn.checkpoint.load(path)["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["c.safetensors"]          # no temporary file left


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "c.safetensors"
    script = os.path.join(os.path.dirname(__file__), "scripts", "checkpoint_kill_child.py")
    child = subprocess.Popen([sys.executable, script, str(path)], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        assert child.stdout.readline().strip() == "saved"
        assert child.stdout.readline().strip() == "writing"   # halfway through the new file
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.stdout.close()
    np.testing.assert_array_equal(fnn.checkpoint.load(path)["w"], np.ones(4, np.float32))
    stale = [n for n in os.listdir(tmp_path) if n != "c.safetensors"]
    assert len(stale) == 1 and stale[0].endswith(".tmp")      # the killed writer's temp file
    fnn.checkpoint.Manager(tmp_path)                           # cleans it up
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_loading_into_a_different_model_reports_the_diff(tmp_path):
    path = tmp_path / "p.safetensors"
    x = np.ones((1, 3), np.float32)
    small = fnn.Sequential([fnn.Dense(4), fnn.Dense(2)]).init(jax.random.key(0), x)[0]
    other = fnn.Sequential([fnn.Dense(5), fnn.Dense(2), fnn.Dense(1)]).init(
        jax.random.key(0), x)[0]
    fnn.checkpoint.save(path, small)
    with pytest.raises(fnn.checkpoint.CheckpointMismatchError) as error:
        fnn.checkpoint.load(path, like=other)
    text = str(error.value)
    assert "(2 missing, 0 unexpected, 3 mismatched)" in text
    assert "missing     2/w: expected float32[2, 1]" in text
    assert "mismatched  0/w: expected float32[3, 5], file has float32[3, 4]" in text
    structs = jax.eval_shape(lambda: small)
    assert_same_tree(fnn.checkpoint.load(path, like=structs), small)   # shapes suffice


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "truncated checkpoint: its header describes"),
    (lambda data: data[:5], "fewer than the 8 of the header length"),
    (lambda data: b"\xff" * 16 + data[16:], "truncated or not a safetensors file"),
    (lambda data: data[:8] + b"#" + data[9:], "its header is not valid JSON"),
])
def test_damaged_files_give_a_clear_error_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "d.safetensors"
    fnn.checkpoint.save(path, {"w": np.ones((64, 64), np.float32)})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(fnn.checkpoint.CorruptCheckpointError, match=message) as error:
        fnn.checkpoint.load(path)
    assert str(path) in str(error.value)


def test_a_safetensors_file_from_elsewhere_and_a_missing_file(tmp_path):
    path = tmp_path / "foreign.safetensors"
    head, arrays = safetensors_format.header_and_arrays({"w": np.ones(2)}, {})
    with open(path, "wb") as f:
        f.write(head)
        for a in arrays:
            safetensors_format.write_array(f, a)
    with pytest.raises(fnn.checkpoint.CorruptCheckpointError, match="not one written by"):
        fnn.checkpoint.load(path)
    with pytest.raises(FileNotFoundError, match="no file"):
        fnn.checkpoint.load(tmp_path / "absent.safetensors")
    with pytest.raises(TypeError, match="cannot store opt of type object"):
        fnn.checkpoint.save(tmp_path / "x.safetensors", {"opt": object()})
    with pytest.raises(TypeError, match="JSON-able"):
        fnn.checkpoint.save(tmp_path / "x.safetensors", {}, config={"f": print})


def test_manager_keeps_the_newest_and_the_best_and_skips_a_corrupt_newest(tmp_path):
    manager = fnn.checkpoint.Manager(tmp_path / "run", keep=2, best="val_accuracy")
    for epoch, accuracy in enumerate([0.5, 0.9, 0.7, 0.6, 0.8]):
        manager.save(epoch, {"w": np.full(2, epoch)}, metrics={"val_accuracy": accuracy})
    assert manager.epochs() == [1, 3, 4] and manager.best_epoch() == 1
    with open(manager.path(5), "wb") as f:
        f.write(b"junk")
    with pytest.warns(RuntimeWarning, match="skipping .*epoch-000005"):
        assert manager.latest() == manager.path(4)
    assert fnn.checkpoint.Manager(tmp_path / "empty").latest() is None


def test_dicts_keep_their_order(tmp_path):
    history = {"loss": [1.0, 0.5], "accuracy": [0.1, 0.2], "val_loss": [2.0, 1.0]}
    fnn.checkpoint.save(tmp_path / "h.safetensors", {"history": history, "w": jnp.ones(2)})
    assert list(fnn.checkpoint.load(tmp_path / "h.safetensors")["history"]) == list(history)
