"""Streamed fit (a memory-mapped file larger than 2 GB) against the in-memory fit of the same arrays.

1. Writes ``x.npy`` (``--examples`` x 3,072 float32; 200,000 rows = 2.46 GB) and
   ``y.npy`` (10 classes) into a temporary folder, in chunks (the whole array is
   never in memory). The file stays in the OS page cache: this measures fnn's
   streaming, not the disk.
2. **Memory**: the streamed fit of one epoch (``np.load(path, mmap_mode="r")``,
   ``stream=True``) while a thread samples ``RssAnon`` (anonymous resident memory,
   ``/proc/self/status``; pages of the mapped file do not count) every 20 ms. Its
   peak minus the baseline taken just before, against the file size (goal < 25%).
   This runs before anything loads the file whole.
3. **Speed**: per-step time of an epoch (a 2-epoch fit minus a 1-epoch fit, so the
   in-memory path's one copy of the data to the device is not counted), streamed
   against in memory (the file loaded with ``np.load``), the same model, key and
   order (their parameters are compared), alternating, for an MLP
   3072-``hidden``-10 at batch ``--batch``. The goal is <= 1.15 for a model whose
   step takes longer than a batch read; ``--sweep`` / ``--sweep-batches`` repeat it
   on the first ``--sweep-examples`` rows for other hidden sizes and batch sizes, and
   report how much of the streamed epoch the training loop waited for the reader
   thread: where the reads stop being hidden (the device waits).
4. **Iterables**: the small MLP 64-32-10 at batch 32 (32,000 examples), fit over a
   generator function of numpy batches (the in-memory order, sliced beforehand) against the
   in-memory fit: fnn's own per-step overhead for an iterable.

    python benchmarks/bench_stream.py [--examples 200000] [--reps 2] [--no-write]
    python benchmarks/bench_stream.py --examples 20000 --reps 1 --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import threading
import time

import jax
import numpy as np

import fnn

FEATURES = 3072


def rss_anon_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class PeakSampler:
    """Samples RssAnon every ``interval`` seconds in a thread; ``peak`` in kB."""

    def __init__(self, interval=0.02):
        self.interval, self.peak, self._stop = interval, rss_anon_kb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_anon_kb())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_anon_kb())


def write_dataset(folder: str, n: int) -> tuple[str, str]:
    """x.npy (n x 3072 float32, two informative directions) and y.npy, written in chunks."""
    rng = np.random.default_rng(0)
    x_path, y_path = os.path.join(folder, "x.npy"), os.path.join(folder, "y.npy")
    x = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.float32, shape=(n, FEATURES))
    y = np.empty(n, np.int32)
    direction = rng.normal(size=(FEATURES, 10)).astype(np.float32) / np.sqrt(FEATURES)
    for start in range(0, n, 10_000):
        block = rng.normal(size=(min(10_000, n - start), FEATURES)).astype(np.float32)
        x[start:start + len(block)] = block
        y[start:start + len(block)] = np.argmax(block @ direction, axis=1)
    x.flush()
    del x
    np.save(y_path, y)
    return x_path, y_path


def mlp(sizes):
    sizes = [s for s in sizes if s]          # a hidden size 0: no hidden layer
    layers = []
    for width in sizes[1:-1]:
        layers += [fnn.Dense(width), fnn.Activation("relu")]
    return fnn.Sequential(layers + [fnn.Dense(sizes[-1])])


class WaitClock:
    """Seconds the training loop waited for the reader thread (``Prefetcher.__next__``):
    above ~0, the device waits on the host: the reads are no longer hidden."""

    def __init__(self):
        self.seconds = 0.0
        original = fnn.train.prefetch.Prefetcher.__next__
        clock = self

        def timed_next(prefetcher):
            start = time.perf_counter()
            try:
                return original(prefetcher)
            finally:
                clock.seconds += time.perf_counter() - start
        fnn.train.prefetch.Prefetcher.__next__ = timed_next


WAITS = WaitClock()


def timed_fit(model, data, batch, stream, params, epochs=1):
    start = time.perf_counter()
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), data,
                     epochs=epochs, batch_size=batch, key=jax.random.key(0), progress=False,
                     stream=stream, params=params)
    jax.block_until_ready(result.params)
    return time.perf_counter() - start, result


def compare(model, memory, mapped, batch, reps):
    """Per-step seconds (streamed, in memory): the time of a 2-epoch fit minus a 1-epoch
    fit, so what each fit does once (the in-memory copy to the device and its NaN check,
    the streamed path's first reads) is not counted; min over ``reps`` alternating rounds.
    Also the share of the streamed second epoch spent waiting for the reader, and the
    largest parameter difference after 1 epoch."""
    n = len(memory[0])
    steps = -(-n // batch)
    params, _ = model.init(jax.random.key(1), memory[0][:1])
    timed_fit(model, mapped, batch, True, params)          # compile both (not timed)
    timed_fit(model, memory, batch, False, params)
    times = {"streamed": [], "memory": []}
    whole = {"streamed": [], "memory": []}
    waits = []
    results = {}
    for rep in range(reps):
        order = ("streamed", "memory") if rep % 2 == 0 else ("memory", "streamed")
        for name in order:
            data, stream = (mapped, True) if name == "streamed" else (memory, False)
            one, results[name] = timed_fit(model, data, batch, stream, params, 1)
            waited = WAITS.seconds
            two, _ = timed_fit(model, data, batch, stream, params, 2)
            times[name].append((two - one) / steps)
            whole[name].append(one / steps)
            if stream:
                waits.append((WAITS.seconds - waited) / two)
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(
        jax.tree.leaves(results["streamed"].params), jax.tree.leaves(results["memory"].params)))
    return (min(times["streamed"]), min(times["memory"]), diff, min(waits),
            min(whole["streamed"]) / min(whole["memory"]))


def iterable_overhead(reps):
    n, batch = 32_000, 32
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 64)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    model = mlp((64, 32, 10))
    params, _ = model.init(jax.random.key(1), x[:1])
    batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, n, batch)]
    kw = dict(epochs=1, key=jax.random.key(0), progress=False, params=params, shuffle=False)

    def run(data, batch_size):
        start = time.perf_counter()
        result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), data,
                         batch_size=batch_size, **kw)
        jax.block_until_ready(result.params)
        return (time.perf_counter() - start) / len(batches), result

    run((x, y), batch)
    run(lambda: iter(batches), None)
    memory, streamed = [], []
    for _ in range(reps + 1):
        t, a = run((x, y), batch)
        memory.append(t)
        t, b = run(lambda: iter(batches), None)
        streamed.append(t)
    same = all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a.params),
                                                    jax.tree.leaves(b.params)))
    return min(streamed), min(memory), same


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--sweep", type=int, nargs="*", default=[256, 16, 0],
                        help="hidden sizes (0: no hidden layer, a linear model)")
    parser.add_argument("--sweep-batches", type=int, nargs="*", default=[32, 256])
    parser.add_argument("--sweep-examples", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    lines = [f"device: {jax.devices()[0].platform}, {os.cpu_count()} cpus, "
             f"{platform.machine()}, jax {jax.__version__}, reps {args.reps}", ""]

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    folder = tempfile.mkdtemp(prefix="fnn-bench-stream-")
    try:
        x_path, y_path = write_dataset(folder, args.examples)
        size = os.path.getsize(x_path)
        say(f"file: {args.examples} x {FEATURES} float32 = {size / 1e9:.2f} GB")
        xm = np.load(x_path, mmap_mode="r")
        ym = np.load(y_path, mmap_mode="r")
        model = mlp((FEATURES, args.hidden, 10))

        # Memory first, before anything loads the file whole.
        params, _ = model.init(jax.random.key(1), xm[:1])
        timed_fit(model, (xm, ym), args.batch, True, params)   # compile, then measure
        base = rss_anon_kb()
        with PeakSampler() as sampler:
            seconds, _ = timed_fit(model, (xm, ym), args.batch, True, params)
        growth = (sampler.peak - base) * 1024
        say(f"RssAnon during the streamed epoch: baseline {base / 1024:.0f} MiB, peak "
            f"{sampler.peak / 1024:.0f} MiB, growth {growth / 2**20:.0f} MiB = "
            f"{growth / size:.1%} of the file (goal < 25%); epoch {seconds:.1f} s")

        memory = (np.load(x_path), np.load(y_path))
        say("")
        say(f"MLP 3072-hidden-10, Adam, per-step time of an epoch (2-epoch fit minus 1-epoch "
            f"fit), streamed / in memory (min of {args.reps})")
        say(f"{'hidden':>6} {'batch':>5} {'examples':>8} {'streamed ms':>11} {'memory ms':>9} "
            f"{'ratio':>6} {'waited':>6} {'1-epoch fit ratio':>17}  max |param diff|")
        cases = [(args.hidden, args.batch, args.examples)] + [
            (hidden, batch, min(args.sweep_examples, args.examples))
            for hidden in args.sweep for batch in args.sweep_batches]
        for hidden, batch, n in cases:
            t_stream, t_memory, diff, waited, whole_ratio = compare(
                mlp((FEATURES, hidden, 10)), (memory[0][:n], memory[1][:n]),
                (xm[:n], ym[:n]), batch, args.reps)
            say(f"{hidden:>6} {batch:>5} {n:>8} {t_stream * 1e3:>11.2f} "
                f"{t_memory * 1e3:>9.2f} {t_stream / t_memory:>6.3f} {waited:>6.1%} "
                f"{whole_ratio:>17.3f}  {diff:.1e}")
        say(f"goal: <= 1.15 for the model whose step takes longer than a batch read (hidden "
            f"{args.hidden}, batch {args.batch}); ratio: steady-state epochs; 1-epoch fit "
            f"ratio: a whole 1-epoch fit each (the in-memory one copies the data to the "
            f"device and checks it for NaN first); waited: the share of the streamed epoch "
            f"the training loop spent waiting for the reader thread")
        del memory

        t_stream, t_memory, same = iterable_overhead(args.reps)
        say("")
        say(f"MLP 64-32-10, batch 32, 1000 steps: iterable of numpy batches {t_stream * 1e6:.1f} "
            f"us/step, in memory {t_memory * 1e6:.1f} us/step: ratio {t_stream / t_memory:.2f}, "
            f"overhead {(t_stream - t_memory) * 1e6:.1f} us/step; same parameters: {same}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not args.no_write:
        out = os.path.join(os.path.dirname(__file__), "results", "stream.txt")
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
