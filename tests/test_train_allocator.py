"""fnn.train.tune_cpu_allocator: explicit, checked, and nothing off glibc."""

import sys

import pytest

import fnn
from fnn.train import allocator


def test_tune_cpu_allocator_is_explicit_checked_and_a_no_op_without_glibc(monkeypatch):
    if sys.platform.startswith("linux") and allocator._glibc_mallopt() is not None:
        assert fnn.train.tune_cpu_allocator() is True
        # glibc's static defaults (128 KiB each), so the rest of the suite runs near them
        assert fnn.train.tune_cpu_allocator(128 << 10, 128 << 10) is True
    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda: None)
    assert fnn.train.tune_cpu_allocator() is False
    for bad in (0, -1, 2 ** 31, 1.5, True):
        with pytest.raises(ValueError, match="tune_cpu_allocator: mmap_threshold"):
            fnn.train.tune_cpu_allocator(bad)
    with pytest.raises(ValueError, match="trim_threshold"):
        fnn.train.tune_cpu_allocator(1 << 20, 0)
