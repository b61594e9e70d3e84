"""The persistent compilation cache: folders, a second call that takes effect, loads that are
not compiles, and a folder that cannot be used.

The root conftest puts the suite's own cache back after each test.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built


X = np.arange(7.0, dtype=np.float32)  # numpy: making it compiles nothing


def _fresh_program(offset):
    """A new function object (so jit's in-memory cache cannot answer) of a small program."""
    return jax.jit(lambda a: jnp.sin(a) * 3.0 + offset)


def test_second_call_takes_effect_and_programs_load_instead_of_compiling(tmp_path):
    first = fnn.train.enable_compilation_cache(tmp_path / "first")
    assert first == str(tmp_path / "first") == fnn.train.compilation_cache_path()
    with programs_built() as built:
        _fresh_program(1.5)(X).block_until_ready()
    assert built == ["compiled"] and os.listdir(first)
    # The same program from another function object is read back from the folder.
    with programs_built() as built:
        _fresh_program(1.5)(X).block_until_ready()
    assert built == ["loaded"]

    entries_in_first = sorted(os.listdir(first))
    second = fnn.train.enable_compilation_cache(tmp_path / "second")
    assert fnn.train.compilation_cache_path() == second
    with programs_built() as built:
        _fresh_program(2.5)(X).block_until_ready()
        # Known to the first folder, not to the second: compiled again, written to the second.
        _fresh_program(1.5)(X).block_until_ready()
    assert built == ["compiled", "compiled"]
    assert len(os.listdir(second)) >= 2 and sorted(os.listdir(first)) == entries_in_first

    entries_in_second = sorted(os.listdir(second))
    fnn.train.disable_compilation_cache()
    assert fnn.train.compilation_cache_path() is None
    with programs_built() as built:
        _fresh_program(3.5)(X).block_until_ready()
    assert built == ["compiled"] and sorted(os.listdir(second)) == entries_in_second


def test_default_folder_comes_from_fnn_cache_or_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_CACHE", str(tmp_path / "from-env"))
    assert fnn.train.enable_compilation_cache() == str(tmp_path / "from-env")
    monkeypatch.delenv("FNN_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = str(tmp_path / "home" / ".cache" / "fnn" / "jax")
    assert fnn.train.enable_compilation_cache() == expected and os.path.isdir(expected)


def test_unusable_folder_warns_and_training_goes_on_uncached(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match=r"cannot use '.*a-file/cache'.*without a persistent"):
        assert fnn.train.enable_compilation_cache(blocker / "cache") is None
    assert fnn.train.compilation_cache_path() is None
    x = jnp.ones((4, 2))
    y = jnp.array([0, 1, 0, 1])
    model = fnn.Dense(2)
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.sgd(0.1), (x, y),
                     epochs=1, batch_size=None, key=jax.random.key(0), progress=False)
    assert len(result.history["loss"]) == 1


def test_negative_thresholds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="min_compile_time_secs"):
        fnn.train.enable_compilation_cache(tmp_path, min_compile_time_secs=-1)
    with pytest.raises(ValueError, match="min_entry_size_bytes"):
        fnn.train.enable_compilation_cache(tmp_path, min_entry_size_bytes=-1)

