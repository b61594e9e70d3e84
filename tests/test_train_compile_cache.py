"""The persistent compilation cache."""

import os

import jax
import jax.numpy as jnp
import pytest

import fnn


def test_compilation_cache_writes_programs(tmp_path):
    cache = fnn.train.enable_compilation_cache(tmp_path / "jax-cache")
    try:
        jax.jit(lambda a: jnp.sin(a) * 3.0 + 1.5)(jnp.arange(7.0)).block_until_ready()
        assert os.listdir(cache)
    finally:
        fnn.train.disable_compilation_cache()
    with pytest.raises(ValueError, match="min_compile_time_secs"):
        fnn.train.enable_compilation_cache(tmp_path, min_compile_time_secs=-1)
