"""Where streamed batches come from (`fnn.train.data.streaming` chooses the path).

- `ArraySource`: random-access ``(x, y)`` (a numpy memmap) read block by block in
  the in-memory order, into fresh aligned host buffers;
- `IterableSource`: an iterable of ``(x, y)`` batches read in its own order,
  one pass per epoch or ``steps_per_epoch`` batches of one iterator;
- `BatchChecker`: each batch's structure, shapes and dtypes against the first,
  and the value checks (label ranges), naming the epoch and step.

Both sources yield `Block` s: consecutive steps' batches one after another.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import jax
import numpy as np


def is_array_like(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__getitem__")

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
        block: `check_block`)."""
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

    Examples:
      >>> fnn.train.data.batch_sources.aligned_empty((3, 5), np.float32).ctypes.data % 64
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
        """Move the reader to ``state`` (from `state`); ``False``: it cannot be moved."""
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


