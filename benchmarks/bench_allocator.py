"""glibc malloc settings and XLA:CPU: time per training step with and without them.

XLA:CPU allocates its large temporaries on every call. With glibc's default
malloc, blocks above the (dynamic) mmap threshold are mapped and unmapped each
time and page-fault again on every step; the usual advice is::

    MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824

glibc reads these variables once, at process start, so every setting runs in
fresh child processes (the settings alternate, the order flipping every
repetition). Each child times, after a warm-up call:

- ``fit small``: ``fnn.fit`` of MLP 64-32-10, batch 32, 60 steps/epoch (the
  whole epoch one scanned call);
- ``fit big``: ``fnn.fit`` of MLP 784-512-512-10, batch 128, 60 steps/epoch;
- ``step small``: a hand-written jitted step of the small MLP called from a
  Python loop (one call per step, as ``strategy="step"`` does);
- ``cnn step``: a hand-written jitted step of the 2-conv CNN (28x28x1; 3x3
  "same" convolutions with 32 and 64 filters, ReLU, 2x2 max-pooling after
  each, dense 128, 10 classes; batch 128; Adam), one call per step.

The last setting calls ``fnn.train.tune_cpu_allocator()`` (``mallopt`` of the
two thresholds) first thing in the child instead of setting variables.

Reported: the median per-step time of each setting and its ratio to the
default (< 1: faster).

    python benchmarks/bench_allocator.py [--reps 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

SETTINGS = {
    "default": {},
    "all three": {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "1073741824",
                  "MALLOC_TRIM_THRESHOLD_": "1073741824"},
    "thresholds only": {"MALLOC_MMAP_THRESHOLD_": "1073741824",
                        "MALLOC_TRIM_THRESHOLD_": "1073741824"},
    "arena max 1 only": {"MALLOC_ARENA_MAX": "1"},
    "tune_cpu_allocator": {"FNN_BENCH_TUNE_ALLOCATOR": "1"},
}
VARIABLES = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
             "FNN_BENCH_TUNE_ALLOCATOR")
MARK = "RESULT "


def child() -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import fnn

    if os.environ.get("FNN_BENCH_TUNE_ALLOCATOR") == "1":
        assert fnn.train.tune_cpu_allocator()
    rng = np.random.default_rng(0)
    out = {}

    def mlp(sizes):
        layers = []
        for width in sizes[1:-1]:
            layers += [fnn.Dense(width), fnn.Activation("relu")]
        return fnn.Sequential(layers + [fnn.Dense(sizes[-1])])

    def time_fit(sizes, batch, steps, epochs):
        model = mlp(sizes)
        x = rng.standard_normal((batch * steps, sizes[0]), dtype=np.float32)
        y = rng.integers(0, sizes[-1], batch * steps).astype(np.int32)
        run = lambda e: fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3),
                                (x, y), epochs=e, batch_size=batch, key=jax.random.key(0),
                                progress=False)
        run(2)  # compiles every program the timed fit runs
        start = time.perf_counter()
        run(epochs)
        return (time.perf_counter() - start) / (epochs * steps)

    def time_step(loss_fn, params, batches, reps):
        opt = fnn.optim.adam(1e-3)

        @jax.jit
        def step(params, opt_state, xb, yb):
            loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
            updates, opt_state = opt.update(grads, opt_state, params)
            return fnn.optim.apply_updates(params, updates), opt_state, loss

        opt_state = opt.init(params)
        for i in range(3):  # the first call's outputs are committed arrays: one more compile
            params, opt_state, loss = step(params, opt_state, *batches[i % len(batches)])
        jax.block_until_ready(loss)
        start = time.perf_counter()
        for i in range(reps):
            params, opt_state, loss = step(params, opt_state, *batches[i % len(batches)])
        jax.block_until_ready(loss)
        return (time.perf_counter() - start) / reps

    out["fit small"] = time_fit((64, 32, 10), 32, 60, 20)
    out["fit big"] = time_fit((784, 512, 512, 10), 128, 60, 3)

    small = mlp((64, 32, 10))
    small_params, _ = small.init(jax.random.key(1), jnp.zeros((32, 64)))
    small_batches = [(jnp.asarray(rng.standard_normal((32, 64), dtype=np.float32)),
                      jnp.asarray(rng.integers(0, 10, 32))) for _ in range(8)]
    out["step small"] = time_step(
        lambda p, xb, yb: fnn.losses.sparse_softmax_cross_entropy(small.apply(p, {}, xb)[0], yb),
        small_params, small_batches, 1000)

    def pool(a):  # 2x2 max-pooling by reshape (non-overlapping windows)
        b, h, w, c = a.shape
        return jnp.max(jnp.reshape(a, (b, h // 2, 2, w // 2, 2, c)), axis=(2, 4))

    def conv(a, w):
        return jax.lax.conv_general_dilated(a, w, (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def cnn_loss(p, xb, yb):
        h = pool(jax.nn.relu(conv(xb, p["c1"]) + p["b1"]))
        h = pool(jax.nn.relu(conv(h, p["c2"]) + p["b2"]))
        h = jax.nn.relu(jnp.reshape(h, (h.shape[0], -1)) @ p["w1"] + p["d1"])
        return fnn.losses.sparse_softmax_cross_entropy(h @ p["w2"] + p["d2"], yb)

    k = jax.random.split(jax.random.key(2), 4)
    cnn_params = {"c1": jax.random.normal(k[0], (3, 3, 1, 32)) * 0.3, "b1": jnp.zeros(32),
                  "c2": jax.random.normal(k[1], (3, 3, 32, 64)) * 0.05, "b2": jnp.zeros(64),
                  "w1": jax.random.normal(k[2], (7 * 7 * 64, 128)) * 0.01, "d1": jnp.zeros(128),
                  "w2": jax.random.normal(k[3], (128, 10)) * 0.1, "d2": jnp.zeros(10)}
    cnn_batches = [(jnp.asarray(rng.standard_normal((128, 28, 28, 1), dtype=np.float32)),
                    jnp.asarray(rng.integers(0, 10, 128))) for _ in range(2)]
    out["cnn step"] = time_step(cnn_loss, cnn_params, cnn_batches, 20)
    print(MARK + json.dumps(out))


def run_child(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update(SETTINGS[setting])
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{setting} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="processes per setting (default 3)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not write benchmarks/results/allocator.txt")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    names = list(SETTINGS)
    runs = {name: [] for name in names}
    for rep in range(args.reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            runs[name].append(run_child(name))
    workloads = list(runs["default"][0])
    median = {name: {w: statistics.median(r[w] for r in runs[name]) for w in workloads}
              for name in names}
    lines = [f"{os.cpu_count()} cpus, {platform.processor() or platform.machine()}, load average "
             f"{os.getloadavg()[0]:.1f}; {args.reps} processes per setting (medians)", "",
             f"{'setting':<18}" + "".join(f"{w:>22}" for w in workloads)]
    for name in names:
        cells = []
        for w in workloads:
            value, ratio = median[name][w], median[name][w] / median["default"][w]
            unit = f"{value * 1e3:.2f} ms" if value > 1e-3 else f"{value * 1e6:.1f} us"
            cells.append(f"{unit} ({ratio:.2f}x)".rjust(22))
        lines.append(f"{name:<18}" + "".join(cells))
    lines += ["", "settings: " + "; ".join(
        f"{name}: {' '.join(f'{k}={v}' for k, v in env.items()) or 'glibc defaults'}"
        if "FNN_BENCH_TUNE_ALLOCATOR" not in env else f"{name}: fnn.train.tune_cpu_allocator()"
        for name, env in SETTINGS.items())]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "allocator.txt")
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
