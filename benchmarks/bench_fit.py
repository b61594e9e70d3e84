"""fnn.fit against hand-written JAX training loops: time per step and compile time.

Same model (an fnn MLP), same optimizer (fnn.optim.adam), same data (synthetic,
60 batches per epoch, already on the device), same per-epoch reshuffle:

- ``hand step``: a jitted step (``value_and_grad`` + ``opt.update`` +
  ``apply_updates``), called from a Python loop; the epoch's shuffled batches
  are gathered on the device once per epoch and indexed inside the step;
- ``hand scan``: the whole epoch (shuffle, gather, ``lax.scan`` over the steps)
  in one jitted function, the mean loss brought to the host once per epoch;
- ``fnn.fit``: ``fnn.fit(model, loss, adam, (x, y), epochs=E, batch_size=b, ...)``,
  everything included (checks, copies, the per-epoch host transfer, history).

Per-step time = wall time of ``E`` epochs / (60 E), median over repetitions
(the variants are timed alternately, so load changes hit all alike).
Compile time = first call after ``jax.clear_caches()`` minus a warm call.
Then ``fnn.fit`` with each strategy (``scan``, ``unroll`` of 8 steps, ``step``), and
for a small CNN (``lax.conv``), where a scanned epoch is slow on CPU.

    python benchmarks/bench_fit.py [--reps 7] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.train import epoch as epoch_module
from fnn.train import evaluation, setup, step as step_module

STEPS = 60
CASES = [((784, 512, 512, 10), 128, 3), ((64, 32, 10), 32, 20)]  # sizes, batch, epochs timed


def mlp(sizes):
    layers = []
    for width in sizes[1:-1]:
        layers += [fnn.Dense(width), fnn.Activation("relu")]
    return fnn.Sequential(layers + [fnn.Dense(sizes[-1])])


def clear_all_caches():
    jax.clear_caches()
    for fn in (step_module.jitted_step, epoch_module.epoch_function, epoch_module._jitted_chunk,
               epoch_module._jitted_begin, evaluation.evaluation_function, setup._jitted_init):
        fn.cache_clear()


def hand_written(model, opt, batch, n):
    loss_fn = fnn.losses.sparse_softmax_cross_entropy

    def train_step(params, opt_state, xb, yb):
        def objective(p):
            return loss_fn(model.apply(p, {}, xb)[0], yb)
        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def shuffle(x, y, key):
        perm = jax.random.permutation(key, n)
        return x[perm].reshape(STEPS, batch, -1), y[perm].reshape(STEPS, batch)

    @jax.jit
    def indexed_step(params, opt_state, xs, ys, i):
        return train_step(params, opt_state, xs[i], ys[i])

    def run_steps(params, opt_state, x, y, key):
        xs, ys = shuffle(x, y, key)
        for i in range(STEPS):
            params, opt_state, loss = indexed_step(params, opt_state, xs, ys, i)
        float(loss)
        return params, opt_state

    @jax.jit
    def scan_epoch(params, opt_state, x, y, key):
        perm = jax.random.permutation(key, n)
        xs, ys = x[perm].reshape(STEPS, batch, -1), y[perm].reshape(STEPS, batch)

        def body(carry, b):
            params, opt_state, loss = train_step(*carry, *b)
            return (params, opt_state), loss
        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (xs, ys))
        return params, opt_state, jnp.mean(losses)

    def run_scan(params, opt_state, x, y, key):
        params, opt_state, loss = scan_epoch(params, opt_state, x, y, key)
        float(loss)
        return params, opt_state

    return run_steps, run_scan


def measure(sizes, batch, epochs, reps, strategies):
    n = STEPS * batch
    model, opt = mlp(sizes), fnn.optim.adam(1e-3)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (n, sizes[0]), jnp.float32)
    y = jax.random.randint(k2, (n,), 0, sizes[-1])
    params, _ = model.init(k3, x[:1])
    run_steps, run_scan = hand_written(model, opt, batch, n)
    keys = [jax.random.key(i) for i in range(epochs)]

    def hand(runner):
        def go(n_epochs):
            p, o = params, opt.init(params)
            for e in range(n_epochs):
                p, o = runner(p, o, x, y, keys[e])
        return go

    fit_key = jax.random.key(1)

    def fit(strategy=None):
        def go(n_epochs):
            fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y), epochs=n_epochs,
                    batch_size=batch, key=fit_key, params=params, progress=False,
                    strategy=strategy)
        return go

    variants = {"hand step": hand(run_steps), "hand scan": hand(run_scan), "fnn.fit": fit()}
    variants.update({f"fit {s}": fit(s) for s in strategies})
    compile_s = {}
    for name, go in variants.items():
        clear_all_caches()
        start = time.perf_counter()
        go(1)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        go(1)
        compile_s[name] = cold - (time.perf_counter() - start)
    per_step = {name: [] for name in variants}
    for rep in range(reps):
        order = list(variants) if rep % 2 == 0 else list(reversed(variants))
        for name in order:
            start = time.perf_counter()
            variants[name](epochs)
            per_step[name].append((time.perf_counter() - start) / (epochs * STEPS) * 1e6)
    return per_step, compile_s


def conv_apply(params, x):
    """A small CNN (two lax.conv layers + dense) as a plain function: no conv layer exists yet."""
    dn = ("NHWC", "HWIO", "NHWC")
    h = jax.nn.relu(jax.lax.conv_general_dilated(x, params["k1"], (1, 1), "SAME",
                                                 dimension_numbers=dn))
    h = jax.nn.relu(jax.lax.conv_general_dilated(h, params["k2"], (2, 2), "SAME",
                                                 dimension_numbers=dn))
    return h.reshape(h.shape[0], -1) @ params["w"]


def measure_conv(reps, batch=32, steps=20):
    """Per-step time of fit's strategies for a CNN on 28x28x1 images (why CPU avoids scan)."""
    k = jax.random.split(jax.random.key(0), 4)
    params = {"k1": jax.random.normal(k[0], (3, 3, 1, 8)) * 0.3,
              "k2": jax.random.normal(k[1], (3, 3, 8, 16)) * 0.1,
              "w": jax.random.normal(k[2], (14 * 14 * 16, 10)) * 0.01}
    x = jax.random.normal(k[3], (batch * steps, 28, 28, 1))
    y = jax.random.randint(k[3], (batch * steps,), 0, 10)
    lines = [f"CNN conv3x3(8)-conv3x3/2(16)-dense(10) on 28x28x1, batch {batch}, Adam, "
             f"{steps} steps/epoch (fit, ms per step; compile s)"]
    for strategy, chunk in (("scan", None), ("unroll", 4), ("step", None)):
        def go(n_epochs):
            fnn.fit(conv_apply, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3), (x, y),
                    epochs=n_epochs, batch_size=batch, key=jax.random.key(1), params=params,
                    progress=False, strategy=strategy, steps_per_dispatch=chunk)
        start = time.perf_counter()
        go(1)
        cold = time.perf_counter() - start
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            go(2)
            times.append((time.perf_counter() - start) / (2 * steps) * 1e3)
        name = strategy + (f" ({chunk})" if chunk else "")
        lines.append(f"{name:<12} {statistics.median(times):>8.2f} ms/step (min "
                     f"{min(times):.2f}), first call {cold:.2f} s")
    return "\n".join(lines)


def report(results):
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
             f"{os.cpu_count()} cpus, {platform.processor() or platform.machine()}, "
             f"jax {jax.__version__}, load average {os.getloadavg()[0]:.1f}", ""]
    for (sizes, batch, _), (per_step, compile_s) in results:
        title = f"MLP {'-'.join(map(str, sizes))}, batch {batch}, Adam, {STEPS} steps/epoch"
        lines += [title, f"{'variant':<12} {'median us/step':>15} {'min us/step':>12} "
                  f"{'compile s':>10}"]
        for name, times in per_step.items():
            lines.append(f"{name:<12} {statistics.median(times):>15.1f} {min(times):>12.1f} "
                         f"{compile_s[name]:>10.2f}")
        best = min(("hand step", "hand scan"), key=lambda v: statistics.median(per_step[v]))
        med = statistics.median(per_step["fnn.fit"]) / statistics.median(per_step[best])
        mins = min(per_step["fnn.fit"]) / min(per_step[best])
        fastest_compile = min(compile_s["hand step"], compile_s["hand scan"])
        lines += [f"fnn.fit / {best} (the faster hand-written): per step {med:.3f} (medians), "
                  f"{mins:.3f} (minima); goal <= 1.05",
                  f"fnn.fit compile / fastest hand-written compile: "
                  f"{compile_s['fnn.fit'] / fastest_compile:.2f}; goal <= 1.5", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-strategies", action="store_true")
    args = parser.parse_args()
    strategies = () if args.no_strategies else ("scan", "unroll", "step")
    results = [(case, measure(*case, args.reps, strategies)) for case in CASES]
    text = report(results)
    if not args.no_strategies:
        text += "\n" + measure_conv(max(3, args.reps // 2)) + "\n"
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(__file__), "results", "fit.txt")
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
