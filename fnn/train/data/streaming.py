"""Data that is not put on the device whole: memory-mapped arrays and iterables of batches.

``fnn.fit``, ``fnn.evaluate`` and ``fnn.predict`` take three kinds of data:

- **arrays in memory** (numpy or JAX): put on the device once, the whole epoch
  runs in one compiled call (the default, and the fastest for data that fits);
- **random-access arrays too large to copy** (``np.load(path, mmap_mode="r")``,
  or any object with ``shape``, ``dtype`` and ``__getitem__`` over index arrays):
  *streamed*. Each batch is gathered on the host in the order the in-memory path
  uses (the same keyed shuffle, the same partial-batch rule) and moved to the
  device ahead of use by a background thread (`fnn.train.data.prefetch`);
- **iterables of** ``(x, y)`` **batches**: a generator function (called afresh for
  each epoch), a Grain ``DataLoader``/``IterDataset``, a PyTorch ``DataLoader``
  (tensors are read with ``np.asarray``), a list of batches, or any iterable.
  One pass is an epoch unless ``steps_per_epoch`` is given (then one iterator is
  read on across epochs, so an endless one works). fnn does not shuffle these.

Which path (``stream=None``, the default): arrays already on the device, and
numpy arrays up to `STREAM_THRESHOLD_BYTES` in all, are put on the device;
larger numpy arrays (a memmap is one) and other random-access objects are
streamed. ``stream=True`` / ``stream=False`` forces either for arrays.

This module decides the path and opens the source; the sources themselves are in
`fnn.train.data.batch_sources`, the streamed epoch in `fnn.train.epoch.streamed`,
and a streamed run's position in its checkpoints in `fnn.train.loop.resume`.

    >>> x = np.zeros((100, 3), np.float32); y = np.zeros(100, np.int32)
    >>> fnn.train.data.streaming.kind_of("fit", (x, y), None), fnn.train.data.streaming.kind_of(
    ...     "fit", (x, y), True)
    ('memory', 'array')
    >>> fnn.train.data.streaming.kind_of("fit", lambda: iter([(x, y)]), None)
    'iterable'
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from fnn.train.data.batch_sources import (ArraySource, BatchChecker, IterableSource,
                                          as_host_batch, inputs_of, is_array_like)

STREAM_THRESHOLD_BYTES = 1 << 30
"""Numpy data larger than this (1 GiB, ``x`` and ``y`` together) is streamed by default."""

STREAM_BLOCK_BYTES = 16 << 20
"""A streamed epoch whose in-memory counterpart runs as one scanned program moves
its batches to the device, and runs them, in blocks of about this many bytes (16 MiB:
``16 MiB // batch bytes`` steps, 1 to `STREAM_MAX_STEPS_PER_BLOCK`); an
unrolled or step-by-step model keeps its own ``steps_per_dispatch``."""

STREAM_MAX_STEPS_PER_BLOCK = 64

def _is_arrays(data: Any) -> bool:
    if not isinstance(data, (tuple, list, dict)) and not is_array_like(data):
        return False                 # a loader, a generator, a function
    leaves = jax.tree.leaves(data, is_leaf=is_array_like)
    return bool(leaves) and all(is_array_like(a) or isinstance(a, (list, int, float))
                                for a in leaves)


def _is_pair_of_arrays(data: Any) -> bool:
    return isinstance(data, (tuple, list)) and len(data) == 2 and _is_arrays(data)


def _is_batch_list(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and all(
        isinstance(item, (tuple, list)) and len(item) == 2 for item in data)


def kind_of(where: str, data: Any, stream: bool | None, inputs_only: bool = False) -> str:
    """``"memory"``, ``"array"`` (streamed random access) or ``"iterable"`` for ``data``:
    ``(x, y)``, or ``x`` alone with ``inputs_only`` (``predict``).

    Raises:
      ValueError: ``stream`` is not ``None``/``True``/``False``, or ``stream=False``
        for an iterable (it cannot be put on the device whole).
    """
    if stream not in (None, True, False):
        raise ValueError(f"{where}: stream must be None (automatic), True or False, got "
                         f"{stream!r}")
    if (_is_arrays(data) and not isinstance(data, list)) if inputs_only else \
            _is_pair_of_arrays(data):
        if stream is not None:
            return "array" if stream else "memory"
        leaves = jax.tree.leaves(data, is_leaf=is_array_like)
        if all(isinstance(a, jax.Array) for a in leaves):
            return "memory"
        foreign = any(is_array_like(a) and not isinstance(a, (np.ndarray, jax.Array))
                      for a in leaves)
        size = sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in leaves
                   if isinstance(a, np.ndarray))
        return "array" if foreign or size > STREAM_THRESHOLD_BYTES else "memory"
    if callable(data) or _is_batch_list(data) or (
            hasattr(data, "__iter__") and not isinstance(data, (tuple, list, str, bytes, dict))
            and not is_array_like(data)):
        if stream is False:
            raise ValueError(f"{where}: stream=False needs (x, y) arrays; an iterable of "
                             f"batches is always read batch by batch")
        return "iterable"
    return "memory"        # checks.check_data names what is wrong with it

def open_iterable(where: str, data: Any, steps_per_epoch: int | None, epochs: int,
                  batch_size: int | None, mesh: Any, validation_split: Any,
                  sample_weight: Any, class_weight: Any) -> IterableSource:
    """The `IterableSource` of ``fit``'s ``data``, after refusing what an iterable
    cannot take (the loader decides the batches)."""
    for name, value in (("validation_split", validation_split),
                        ("sample_weight", sample_weight), ("class_weight", class_weight),
                        ("mesh", mesh)):
        if value is not None:
            raise ValueError(f"{where}: {name}= needs (x, y) arrays; with an iterable of "
                             f"batches, {_INSTEAD[name]}")
    source = IterableSource(where, data, steps_per_epoch, epochs)
    first = source.first()
    if not isinstance(first, tuple) or len(first) != 2:
        raise ValueError(f"{where}: an iterable must yield (x, y) pairs; its first item is "
                         f"{type(first).__name__}")
    _refuse_examples(where, data, first)
    size = len(jax.tree.leaves(first)[0]) if jax.tree.leaves(first) else 0
    if batch_size is not None and batch_size != size:
        raise ValueError(f"{where}: batch_size={batch_size}, but the iterable's first batch "
                         f"holds {size} examples; the iterable decides the batches (pass "
                         f"batch_size=None)")
    return source


def _refuse_examples(where: str, data: Any, first: tuple) -> None:
    """An iterable's first item that looks like one example, not a batch (a label with no
    example axis, or features and labels of different lengths): a list of ``(x_i, y_i)``
    examples, which would be read as batches of the features' first axis."""
    leaves = [np.asarray(a) for a in jax.tree.leaves(first)]
    lengths = {a.shape[0] for a in leaves if a.ndim}
    if leaves and (any(a.ndim == 0 for a in leaves) or len(lengths) > 1):
        what = "a list" if isinstance(data, list) else f"an iterable ({type(data).__name__})"
        shapes = jax.tree.map(lambda a: np.shape(a), first)
        raise ValueError(
            f"{where}: data is {what}, which is read as (x, y) batches, but its first item "
            f"looks like one example (shapes {shapes}: every array of a batch has the same "
            f"leading batch axis). To train on examples, stack them into arrays: "
            f"x = np.stack([x_i for x_i, _ in data]), y = np.array([y_i for _, y_i in data]), "
            f"then fit on (x, y) with a batch_size")


_INSTEAD = {"validation_split": "pass validation_data",
            "sample_weight": "weight the loss inside it, or pass (x, y) arrays",
            "class_weight": "weight the loss inside it, or pass (x, y) arrays",
            "mesh": "use (x, y) arrays (each process's own rows are read for it)"}


def training_source(where: str, source: IterableSource | None, data: Any,
                    check_values: Callable, weighted: bool) -> Any:
    """The source ``fit`` streams: ``source`` with its batch checks, or an
    `ArraySource` over ``data = (x, y)`` (``y = (labels, weights)`` when
    ``weighted``; the values checked are the labels')."""
    if source is not None:
        source.check = BatchChecker(where, source.first(), check_values)
        return source
    check = (lambda x, y: check_values(x, y[0])) if weighted else check_values
    return ArraySource(where, data, check)


def set_value_check(source: Any, check_values: Callable) -> None:
    """Check every batch's values with ``check_values(x, y)`` (``(x)`` for inputs only)."""
    if isinstance(source, ArraySource):
        source.check_values = check_values
    else:
        source.check.check_values = check_values


def steps_per_block(batch_bytes: int) -> int:
    """Steps per streamed block for batches of ``batch_bytes`` (`STREAM_BLOCK_BYTES`).

    Examples:
      >>> fnn.train.data.streaming.steps_per_block(256 * 3072 * 4), fnn.train.data.streaming.steps_per_block(8192)
      (5, 64)
    """
    return max(1, min(STREAM_MAX_STEPS_PER_BLOCK, STREAM_BLOCK_BYTES // max(1, batch_bytes)))


def open_source(where: str, data: Any, stream: bool | None, epochs: int = 1,
                inputs_only: bool = False, name: str = "data") -> Any:
    """The source to stream ``data`` from, or ``None`` for data that goes on the device whole.

    Args:
      where: the calling function, named in messages.
      data: ``(x, y)`` arrays (``x`` alone with ``inputs_only``), or an iterable of
        batches (``x`` or ``(x, y)`` items with ``inputs_only``).
      stream: as ``fit``'s ``stream``.
      epochs: passes that will be read (an iterator can be read once).
      inputs_only: ``predict``: the batches are inputs (``y`` of a pair is dropped).
      name: what the data is called in messages.

    Each batch's values are checked once `set_value_check`
    gives the check (label ranges, known after the shapes are).
    """
    kind = kind_of(where, data, stream, inputs_only)
    if kind == "memory":
        return None
    if kind == "array":
        return ArraySource(where, (data,) if inputs_only else data)
    source = IterableSource(where, data, None, epochs, name)
    first = source.first()
    source.check = BatchChecker(
        where, as_host_batch(inputs_of(first)) if inputs_only else first,
        inputs_only=inputs_only)
    if not inputs_only and (not isinstance(first, tuple) or len(first) != 2):
        raise ValueError(f"{where}: {name} must yield (x, y) pairs; its first item is "
                         f"{type(first).__name__}")
    return source


def first_batch(source: Any, batch_size: int | None) -> Any:
    """One batch's host arrays (for shape checks): the first ``batch_size`` rows, or the
    iterable's first batch."""
    if source.examples is None:
        return source.check(source.first(), 0, 0)
    return source.first(min(batch_size, source.examples))


def check_batch_size(where: str, source: Any, batch_size: int | None, name: str = "batch_size"
                     ) -> None:
    """Streamed arrays need a batch size (an iterable brings its own)."""
    if source is not None and source.examples is not None and batch_size is None:
        raise ValueError(f"{where}: streamed data needs a {name} (None would put all the "
                         f"examples on the device at once)")
