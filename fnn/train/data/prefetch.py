"""Read ahead in a background thread: the host prepares the next items while the device works.

`Prefetcher` runs an iterator of host work (gathering a batch from a
memory-mapped file, reading a loader) in one daemon thread, ``depth`` items
ahead, and hands the results to the consumer in order. Its promises:

- an exception in the thread is re-raised in the consumer, at the item where it
  happened (with the context the producer attached), after the thread stopped;
- leaving early (``close()``, a ``with`` block left by an error or by
  ``KeyboardInterrupt``) stops the thread and joins it: no thread is left behind
  and nothing hangs, even when the producer is blocked on a full queue;
- the consumer waits in short slices, so Ctrl-C reaches the main thread at once.

    >>> with fnn.train.data.prefetch.Prefetcher(iter(range(5)), lambda i: i * i, depth=2) as items:
    ...     list(items)
    [0, 1, 4, 9, 16]
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterator

_DONE = object()
_POLL = 0.05
"""Seconds between checks of the stop flag while waiting (bounds how long ``close`` takes)."""


class Prefetcher:
    """Iterate ``transform(item) for item in items``, computed ``depth`` items ahead in a thread.

    Args:
      items: an iterator of work descriptions (advanced in the background thread).
      transform: ``transform(item) -> result`` (e.g. read a batch and put it on the device).
      depth: results held ready ahead of the consumer (``>= 1``).
      name: the thread's name (for debuggers and error messages).
    """

    def __init__(self, items: Iterator[Any], transform: Callable[[Any], Any], depth: int = 2,
                 name: str = "fnn-prefetch"):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._items, self._transform = items, transform
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        try:
            self._thread.start()
        except BaseException:          # Ctrl-C while starting: stop it before leaving
            self.close()
            raise

    def _put(self, entry: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if self._stop.is_set() or not self._put((True, self._transform(item))):
                    return
        except BaseException as err:    # handed to the consumer, raised there
            self._put((False, err))
            return
        self._put((True, _DONE))

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> Any:
        while True:
            try:
                ok, value = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("fnn: the prefetch thread ended without a result")
        if not ok:
            self.close()
            raise value
        if value is _DONE:
            self.close()
            raise StopIteration
        return value

    def close(self) -> None:
        """Stop the thread and wait for it (safe to call twice; a Ctrl-C arriving meanwhile
        is raised once the thread has stopped)."""
        self._stop.set()
        interrupted = None
        while self._thread.is_alive():
            try:
                try:                   # unblock a producer waiting on a full queue
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(timeout=_POLL)
            except KeyboardInterrupt as err:
                interrupted = err
        close = getattr(self._items, "close", None)   # a generator: run its finally blocks
        if close is not None:
            try:
                close()
            except ValueError:        # "generator already executing": not ours to close
                pass
        if interrupted is not None:
            raise interrupted

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
