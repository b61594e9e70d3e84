"""Data that is not put on the device whole: memory-mapped arrays and iterables of batches.

``fnn.fit``, ``fnn.evaluate`` and ``fnn.predict`` take three kinds of data:

- **arrays in memory** (numpy or JAX): put on the device once, the whole epoch
  runs in one compiled call (the default, and the fastest for data that fits);
- **random-access arrays too large to copy** (``np.load(path, mmap_mode="r")``,
  or any object with ``shape``, ``dtype`` and ``__getitem__`` over index arrays):
  *streamed*. Each batch is gathered on the host in the order the in-memory path
  uses (the same keyed shuffle, the same partial-batch rule) and moved to the
  device ahead of use by a background thread (:mod:`fnn.train.prefetch`);
- **iterables of** ``(x, y)`` **batches**: a generator function (called afresh for
  each epoch), a Grain ``DataLoader``/``IterDataset``, a PyTorch ``DataLoader``
  (tensors are read with ``np.asarray``), a list of batches, or any iterable.
  One pass is an epoch unless ``steps_per_epoch`` is given (then one iterator is
  read on across epochs, so an endless one works). fnn does not shuffle these.

Which path (``stream=None``, the default): arrays already on the device, and
numpy arrays up to :data:`STREAM_THRESHOLD_BYTES` in all, are put on the device;
larger numpy arrays (a memmap is one) and other random-access objects are
streamed. ``stream=True`` / ``stream=False`` forces either for arrays.

    >>> x = np.zeros((100, 3), np.float32); y = np.zeros(100, np.int32)
    >>> fnn.train.streaming.kind_of("fit", (x, y), None), fnn.train.streaming.kind_of(
    ...     "fit", (x, y), True)
    ('memory', 'array')
    >>> fnn.train.streaming.kind_of("fit", lambda: iter([(x, y)]), None)
    'iterable'
"""

from __future__ import annotations

import base64
import dataclasses
import warnings
from typing import Any, Callable, Iterator

import jax
import numpy as np


STREAM_THRESHOLD_BYTES = 1 << 30
"""Numpy data larger than this (1 GiB, ``x`` and ``y`` together) is streamed by default."""

STREAM_BLOCK_BYTES = 16 << 20
"""A streamed epoch whose in-memory counterpart runs as one scanned program moves
its batches to the device, and runs them, in blocks of about this many bytes (16 MiB:
``16 MiB // batch bytes`` steps, 1 to :data:`STREAM_MAX_STEPS_PER_BLOCK`); an
unrolled or step-by-step model keeps its own ``steps_per_dispatch``."""

STREAM_MAX_STEPS_PER_BLOCK = 64


def is_array_like(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__getitem__")


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


def as_host_batch(batch: Any) -> Any:
    """A batch's leaves as numpy arrays (``np.asarray``: no copy for numpy arrays and CPU
    tensors of PyTorch; a JAX array is copied to the host)."""
    return jax.tree.map(np.asarray, batch)


def describe(tree: Any) -> str:
    """``shape (dtype)`` of each leaf, for messages."""
    parts = jax.tree.map(lambda a: f"{tuple(np.shape(a))} {np.dtype(a.dtype).name}", tree)
    return str(parts) if jax.tree.structure(tree).num_nodes > 1 else parts


def _feature_key(batch: Any) -> tuple:
    if (type(batch) is tuple and len(batch) == 2 and type(batch[0]) is np.ndarray
            and type(batch[1]) is np.ndarray):           # the common case, quickly
        return tuple((a.shape[1:], a.dtype.str) for a in batch)
    leaves, treedef = jax.tree.flatten(batch)
    return treedef, tuple((tuple(np.shape(a)[1:]), jax.dtypes.canonicalize_dtype(a.dtype))
                          for a in leaves)


@dataclasses.dataclass
class Block:
    """Steps ``start .. start + count - 1`` of an epoch, each of ``size`` examples: ``data``
    holds their batches one after another, leaves of shape ``(count * size, ...)`` (over a
    mesh ``(count, size / P, ...)``: this process's share of each of them)."""

    start: int
    count: int
    size: int
    data: Any


class BatchChecker:
    """Checks each streamed batch against the first one (structure, feature shapes, dtypes)
    and with ``check_values(x, y)`` (label ranges), naming the epoch and step.

    Args:
      where: the calling function, named in messages.
      first: the first batch ``(x, y)`` (host arrays).
      check_values: ``check_values(x, y)`` raising ``ValueError`` for bad values, or ``None``.
      inputs_only: the batches are inputs ``x`` (or ``(x, y)`` pairs whose ``y`` is
        dropped), checked as ``(x,)``; ``first`` is ``(x,)``.
    """

    def __init__(self, where: str, first: Any, check_values: Callable | None = None,
                 inputs_only: bool = False):
        self.where, self.first, self.key = where, first, _feature_key(first)
        self.check_values, self.inputs_only = check_values, inputs_only

    def __call__(self, batch: Any, epoch: int, step: int) -> Any:
        """The batch as host arrays, its structure checked (its values are checked per
        block: :meth:`check_block`)."""
        if (not self.inputs_only and type(batch) is tuple and len(batch) == 2
                and type(batch[0]) is np.ndarray and type(batch[1]) is np.ndarray
                and batch[0].ndim and batch[1].ndim and batch[0].shape[0] == batch[1].shape[0]
                and batch[0].shape[0] and _feature_key(batch) == self.key):
            return batch                 # the common case, checked quickly
        if self.inputs_only:
            batch = inputs_of(batch)
        elif not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ValueError(f"{self.where}: the batch at epoch {epoch}, step {step} is not a "
                             f"pair (x, y): got {type(batch).__name__}")
        batch = as_host_batch(tuple(batch))
        sizes = {np.shape(a)[0] if np.ndim(a) else None for a in jax.tree.leaves(batch)}
        if len(sizes) != 1 or None in sizes or 0 in sizes:
            raise ValueError(f"{self.where}: the batch at epoch {epoch}, step {step} needs one "
                             f"leading batch size >= 1 in all of x and y, got "
                             f"{describe(batch)}")
        if _feature_key(batch) != self.key:
            raise ValueError(f"{self.where}: the batch at epoch {epoch}, step {step} has "
                             f"(x, y) of {describe(batch)}, but the first batch had "
                             f"{describe(self.first)}; every batch needs the same example "
                             f"shapes and dtypes (only the batch size may differ)")
        return batch

    def check_block(self, batches: list, block: Any, epoch: int, start: int) -> None:
        """The value checks on a block of ``batches`` (``block``: them concatenated); on a
        failure the batch at fault is found and named."""
        if self.check_values is None:
            return
        try:
            self.check_values(*block)
        except ValueError:
            for step, batch in enumerate(batches, start):
                check_batch_values(self.check_values, batch, epoch, step)
            raise


def inputs_of(item: Any) -> tuple:
    """``(x,)`` of a ``predict`` batch: ``x``, or the ``x`` of an ``(x, y)`` pair (a tuple,
    or a list as PyTorch's ``DataLoader`` yields)."""
    return (item[0],) if isinstance(item, (tuple, list)) and len(item) == 2 else (item,)


def check_batch_values(check_values: Callable | None, batch: Any, epoch: int, step: int) -> None:
    """``check_values(x, y)``; its ``ValueError`` says which batch."""
    if check_values is None:
        return
    try:
        check_values(*batch)
    except ValueError as err:
        raise ValueError(f"{err} (in the batch at epoch {epoch}, step {step})") from None


def with_context(err: BaseException, where: str, epoch: int, step: int) -> BaseException:
    """``err`` with a note naming the epoch and step whose batch was being read."""
    if hasattr(err, "add_note") and not isinstance(err, (KeyboardInterrupt, SystemExit)):
        err.add_note(f"{where}: raised while reading the batch for epoch {epoch} (counting "
                     f"from 0), step {step}")
    return err


def _stack(batches: list) -> Any:
    """The batches one after another (in new aligned buffers when there are several)."""
    if len(batches) == 1:
        return batches[0]

    def stack(*parts: np.ndarray) -> np.ndarray:
        out = aligned_empty((sum(len(p) for p in parts),) + parts[0].shape[1:], parts[0].dtype)
        return np.concatenate(parts, out=out)
    return jax.tree.map(stack, *batches)


def aligned_empty(shape: tuple, dtype: Any, align: int = 64) -> np.ndarray:
    """An uninitialised array whose data starts on an ``align``-byte boundary (XLA's CPU
    client then takes it as a device buffer as it is, without copying).

    Example:
      >>> fnn.train.streaming.aligned_empty((3, 5), np.float32).ctypes.data % 64
      0
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + align, np.uint8)
    offset = (-raw.ctypes.data) % align
    return raw[offset:offset + size].view(dtype).reshape(shape)


def _plain(a: Any) -> Any:
    """A numpy memmap as a plain ndarray view of the same mapped pages: indexing a
    ``np.memmap`` makes a memmap subclass (slow to build, and ``np.array`` of it copies
    again); the plain view's gather is one copy, ~7x faster on 3 MB batches."""
    return a.view(np.ndarray) if isinstance(a, np.ndarray) and type(a) is not np.ndarray \
        else a


class ArraySource:
    """Random-access ``(x, y)`` read batch by batch in the in-memory path's order.

    Args:
      where: the calling function, named in messages.
      data: ``(x, y)``; each leaf has ``shape``, ``dtype`` and ``__getitem__`` over
        integer index arrays in any order (a numpy memmap).
      check_values: ``check_values(x, y)`` raising ``ValueError`` for bad values (label
        ranges) of a block, or ``None``.
    """

    def __init__(self, where: str, data: Any, check_values: Callable | None = None):
        self.where, self.data = where, jax.tree.map(_plain, tuple(data), is_leaf=is_array_like)
        self.examples = int(jax.tree.leaves(self.data, is_leaf=is_array_like)[0].shape[0])
        self.check_values = check_values

    def first(self, size: int) -> Any:
        """The first ``size`` examples (host arrays)."""
        return self._read(slice(0, size))

    def _read(self, rows: Any) -> Any:
        """The rows (an index array or a slice), copied once into new 64-byte aligned
        buffers, which ``jax.device_put`` on CPU then uses without a second copy."""
        def read(a: Any) -> Any:
            if not isinstance(a, np.ndarray):
                return np.asarray(a[rows])
            count = len(range(*rows.indices(len(a)))) if isinstance(rows, slice) else len(rows)
            out = aligned_empty((count,) + a.shape[1:], a.dtype)
            if isinstance(rows, slice):
                out[...] = a[rows]
            else:
                np.take(a, rows, axis=0, out=out)
            return out
        return jax.tree.map(read, self.data, is_leaf=is_array_like)

    def blocks(self, epoch: int, order: np.ndarray | None, plan: list[tuple[int, int, int]],
               part: tuple[int, int] | None = None) -> Iterator[Block]:
        """The epoch's blocks ``(start, count, size)`` of ``plan``, step ``i`` reading the
        rows ``order[i*b : (i+1)*b]`` (contiguous rows when ``order`` is ``None``); a
        block's rows one after another, or, with ``part = (p, P)`` (process ``p`` of
        ``P``, each reading only its own rows), ``(count, size / P, ...)``: the ``p``-th
        ``P``-th of each step's batch."""
        b = plan[0][2] if plan else 0
        for start, count, size in plan:
            lo = start * b
            try:
                rows = (np.arange(lo, lo + count * size) if order is None
                        else order[lo:lo + count * size])
                if part is not None:
                    p, processes = part
                    share = size // processes
                    rows = rows.reshape(count, size)[:, p * share:(p + 1) * share].ravel()
                elif order is None:
                    rows = slice(lo, lo + count * size)
                host = self._read(rows)
                check_batch_values(self.check_values, host, epoch, start)
            except Exception as err:
                raise with_context(err, self.where, epoch, start)
            if part is not None:
                host = jax.tree.map(lambda a: a.reshape((count, -1) + a.shape[1:]), host)
            yield Block(start, count, size, host)


def _is_one_shot(data: Any) -> bool:
    """An iterator (``iter(data) is data``, e.g. a generator object): it can be read once."""
    try:
        return iter(data) is data
    except TypeError:
        return False


class IterableSource:
    """An iterable of ``(x, y)`` batches, read in its own order, one epoch at a time.

    Without ``steps_per_epoch`` an epoch is one pass: a callable (a generator
    function) is called afresh for each epoch, any other iterable is iterated afresh
    (``iter(data)``); an iterator (a generator object) can be read for one epoch
    only. With ``steps_per_epoch`` one iterator is made once and each epoch reads its
    next ``steps_per_epoch`` batches (an endless iterable works).

    Args:
      where: the calling function, named in messages.
      data: the iterable, or a function returning one.
      steps_per_epoch: batches per epoch, or ``None`` (one pass).
      epochs: the number of epochs that will be read (for the one-shot check).
      name: what the data is called in messages (``"validation_data"``).
    """

    def __init__(self, where: str, data: Any, steps_per_epoch: int | None, epochs: int = 1,
                 name: str = "data"):
        if steps_per_epoch is None and epochs > 1 and _is_one_shot(data):
            raise ValueError(
                f"{where}: {name} is an iterator ({type(data).__name__}), which can be read "
                f"once, but {epochs} epochs need {epochs} passes; pass a generator function "
                f"(called afresh for each epoch, e.g. data=lambda: batches()), a re-iterable "
                f"loader, or steps_per_epoch= to read one endless iterator across epochs")
        self.where, self.data, self.steps = where, data, steps_per_epoch
        self.examples = None
        self.check: Callable | None = None
        self._iterator: Any = None         # the current pass (or the one endless iterator)
        self._fresh = True                 # no epoch has read from it yet
        self._first = self._next(self._open(), 0, 0)
        if self._first is None:
            raise ValueError(f"{where}: {name} yielded no batches")
        self._held = [self._first]         # read ahead for the shapes; given to epoch 0

    def _open(self) -> Any:
        data = self.data() if callable(self.data) and not hasattr(self.data, "__iter__") \
            else self.data
        try:
            self._iterator = iter(data)
        except TypeError:
            raise TypeError(f"{self.where}: data must be (x, y) arrays, an iterable of (x, y) "
                            f"batches or a function returning one, got "
                            f"{type(data).__name__}") from None
        return self._iterator

    def _next(self, iterator: Any, epoch: int, step: int) -> Any:
        try:
            return next(iterator)
        except StopIteration:
            return None
        except Exception as err:
            raise with_context(err, self.where, epoch, step)

    def first(self) -> Any:
        """The first batch, as host arrays (read once, still given to the first epoch)."""
        return as_host_batch(tuple(self._first)) if isinstance(self._first, (tuple, list)) \
            else self._first

    def state(self) -> Any:
        """The reader's position, when it can say (a Grain iterator's ``get_state()``)."""
        get_state = getattr(self._iterator, "get_state", None)
        return None if get_state is None else get_state()

    def restore(self, state: Any) -> bool:
        """Move the reader to ``state`` (from :meth:`state`); ``False``: it cannot be moved."""
        set_state = getattr(self._iterator, "set_state", None)
        if set_state is None or state is None:
            return False
        set_state(state)
        self._held = []
        return True

    def blocks(self, epoch: int, per_block: int) -> Iterator[Block]:
        """The epoch's batches in blocks of up to ``per_block`` consecutive batches of one
        size (a batch of another size starts a new block)."""
        if self.steps is None and not self._fresh:
            self._open()                   # a new pass (the first epoch's is open already)
        self._fresh = False
        iterator, held, self._held = self._iterator, self._held, []
        pending: list = []
        start = step = 0

        def block() -> Block:
            data = _stack(pending)
            if self.check is not None:
                self.check.check_block(pending, data, epoch, start)
            return Block(start, len(pending), len(jax.tree.leaves(pending[0])[0]), data)
        while self.steps is None or step < self.steps:
            raw = held.pop(0) if held else self._next(iterator, epoch, step)
            if raw is None:
                break
            batch = self.check(raw, epoch, step) if self.check else as_host_batch(raw)
            # our own copy at once: a loader may refill its buffers after yielding, and
            # the batch waits in its block (and on the device, which may alias it on CPU)
            batch = jax.tree.map(np.array, batch)
            size = len(jax.tree.leaves(batch)[0])
            if pending and len(jax.tree.leaves(pending[0])[0]) != size:
                yield block()
                start, pending = step, []
            pending.append(batch)
            step += 1
            if len(pending) == per_block:
                yield block()
                start, pending = step, []
        if pending:
            yield block()
        if step == 0:
            raise ValueError(f"{self.where}: the data yielded no batches in epoch {epoch} "
                             f"(counting from 0)")
        if self.steps is not None and step < self.steps:
            raise ValueError(f"{self.where}: the data ended after {step} batches in epoch "
                             f"{epoch} (counting from 0), before steps_per_epoch="
                             f"{self.steps}; pass an endless iterable (e.g. repeat the "
                             f"dataset) or a smaller steps_per_epoch")


def open_iterable(where: str, data: Any, steps_per_epoch: int | None, epochs: int,
                  batch_size: int | None, mesh: Any, validation_split: Any,
                  sample_weight: Any, class_weight: Any) -> IterableSource:
    """The :class:`IterableSource` of ``fit``'s ``data``, after refusing what an iterable
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
    size = len(jax.tree.leaves(first)[0]) if jax.tree.leaves(first) else 0
    if batch_size is not None and batch_size != size:
        raise ValueError(f"{where}: batch_size={batch_size}, but the iterable's first batch "
                         f"holds {size} examples; the iterable decides the batches (pass "
                         f"batch_size=None)")
    return source


_INSTEAD = {"validation_split": "pass validation_data",
            "sample_weight": "weight the loss inside it, or pass (x, y) arrays",
            "class_weight": "weight the loss inside it, or pass (x, y) arrays",
            "mesh": "use (x, y) arrays (each process's own rows are read for it)"}


def training_source(where: str, source: IterableSource | None, data: Any,
                    check_values: Callable, weighted: bool) -> Any:
    """The source ``fit`` streams: ``source`` with its batch checks, or an
    :class:`ArraySource` over ``data = (x, y)`` (``y = (labels, weights)`` when
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


def position(source: Any, epoch: int) -> dict | None:
    """Where a streamed run is after epoch ``epoch``, for its checkpoint (JSON-able):
    ``{"epoch": epoch + 1, "step": 0}`` and, for an iterator read across epochs
    (``steps_per_epoch``) that can tell (Grain's ``get_state()``), its state."""
    if source is None:
        return None
    place: dict = {"epoch": epoch + 1, "step": 0}
    state = source.state() if isinstance(source, IterableSource) and source.steps else None
    if isinstance(state, bytes):
        place["reader"] = {"bytes": base64.b64encode(state).decode("ascii")}
    elif state is not None:
        place["reader"] = {"json": state}
    return place


def reposition(source: Any, place: dict | None) -> None:
    """Move ``source`` to where a checkpoint's :func:`position` says. Arrays and iterables
    read afresh for each epoch need nothing; an iterator read across epochs is restored
    from its saved state, or, when it cannot be (a plain generator), read on from where
    it is now, with a warning."""
    if not isinstance(source, IterableSource) or not source.steps:
        return
    reader = (place or {}).get("reader")
    state = None if reader is None else (
        base64.b64decode(reader["bytes"]) if "bytes" in reader else reader["json"])
    if not source.restore(state):
        warnings.warn(
            f"{source.where}: the data iterator cannot be repositioned (it has no "
            f"get_state/set_state, as a Grain iterator has), so the resumed run reads on "
            f"from where the new iterator starts; its batches differ from the uninterrupted "
            f"run's", RuntimeWarning, stacklevel=3)


def steps_per_block(batch_bytes: int) -> int:
    """Steps per streamed block for batches of ``batch_bytes`` (:data:`STREAM_BLOCK_BYTES`).

    Example:
      >>> fnn.train.streaming.steps_per_block(256 * 3072 * 4), fnn.train.streaming.steps_per_block(8192)
      (5, 64)
    """
    return max(1, min(STREAM_MAX_STEPS_PER_BLOCK, STREAM_BLOCK_BYTES // max(1, batch_bytes)))
