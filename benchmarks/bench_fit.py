"""fnn.fit against hand-written JAX training loops: time per step and compile time.

Same model (an fnn MLP), same optimizer (fnn.optim.adam), same data (synthetic,
already on the device), same per-epoch key derivation as ``fit``::

    shuffle_key, steps_key = jax.random.split(
        jax.random.fold_in(jax.random.split(key)[1], epoch))

The hand-written variants (all the same fnn model and ``fnn.optim.adam``):

- ``hand step``: a jitted step (``value_and_grad`` + ``opt.update`` +
  ``apply_updates``), called from a Python loop; the epoch's batches are
  gathered on the device once per epoch with
  ``fnn.train.shuffled_indices(shuffle_key, n)`` and indexed inside the step;
- ``hand scan, index shuffle``: the whole epoch in one jitted function, the
  way ``fit`` does it: ``perm = fnn.train.shuffled_indices(shuffle_key, n)``,
  then ``lax.scan`` over the step index, each step gathering its rows with
  ``jnp.take(x, perm[i*b:(i+1)*b], axis=0)``; the mean loss comes to the host
  once per epoch (``float``);
- ``hand scan, permutation``: the old way: ``jax.random.permutation`` (a sort),
  the whole epoch gathered at once (``x[perm]``), ``lax.scan`` over the batches;
- ``hand scan, no shuffle``: contiguous batches, ``lax.dynamic_slice`` of
  ``x`` inside the scan, no gather at all (the floor for ``fit``);

and ``fnn.fit`` itself, everything included (checks, the per-epoch host
transfer, NaN checks, history): ``fnn.fit``, ``fnn.fit shuffle=False``,
``fnn.fit + no-op callback`` (a callback turns off fit's pipelined dispatch,
where epoch e + 1 is dispatched before epoch e's numbers are read), ``fnn.fit
monitor=Monitor()`` (every step's gradient norms and activation statistics), and each
dispatch strategy (``fit scan``, ``fit unroll`` of 8 steps, ``fit step``).

Cases: MLP 784-512-512-10 (batch 128) and 64-32-10 (batch 32) with 60 steps
per epoch, and the issue's workload, 64-32-10 with 1,000 steps per epoch
(32,000 examples); then fit's strategies on a small CNN (``lax.conv``).

Per-step time = wall time of ``E`` epochs / (steps E); median and minimum over
repetitions (the variants are timed alternately, the order flipping every
repetition, so load changes hit all alike). Compile time = first call after
clearing every cache (``jax.clear_caches()`` and fnn's memoized factories)
minus a warm call (every variant is then run once more before the timing, as
the later variants' cache clearing dropped its programs). The warm call's
parameters are compared with fit's (same keys, same order): a small difference
says the variants do the same work.

    python benchmarks/bench_fit.py [--reps 7] [--no-write]
    python benchmarks/bench_fit.py --reps 1 --epochs 1 --cases issue --no-write  # smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax

import fnn
from fnn.train import shuffled_indices

HAND_STEP = "hand step"
SCAN_INDEX = "hand scan, index shuffle"
SCAN_PERM = "hand scan, permutation"
SCAN_NONE = "hand scan, no shuffle"
FIT = "fnn.fit"
FIT_NO_SHUFFLE = "fnn.fit shuffle=False"
FIT_CALLBACK = "fnn.fit + no-op callback"
FIT_MONITOR = "fnn.fit monitor=Monitor()"
STRATEGIES = ("scan", "unroll", "step")

# name, MLP sizes, batch, steps per epoch, epochs timed, variants (strategies added unless
# --no-strategies)
CASES = [
    dict(name="big", sizes=(784, 512, 512, 10), batch=128, steps=60, epochs=3,
         variants=(HAND_STEP, SCAN_INDEX, SCAN_PERM, FIT, FIT_MONITOR), strategies=True),
    dict(name="small", sizes=(64, 32, 10), batch=32, steps=60, epochs=20,
         variants=(HAND_STEP, SCAN_INDEX, SCAN_PERM, FIT, FIT_CALLBACK, FIT_MONITOR),
         strategies=True),
    dict(name="issue", sizes=(64, 32, 10), batch=32, steps=1000, epochs=10,
         variants=(SCAN_NONE, SCAN_PERM, SCAN_INDEX, FIT, FIT_NO_SHUFFLE), strategies=False),
]
# the run whose parameters each variant's should match (same keys, same order of examples)
REFERENCE = {HAND_STEP: FIT, SCAN_INDEX: FIT, SCAN_NONE: FIT_NO_SHUFFLE, FIT_CALLBACK: FIT}


def mlp(sizes):
    layers = []
    for width in sizes[1:-1]:
        layers += [fnn.Dense(width), fnn.Activation("relu")]
    return fnn.Sequential(layers + [fnn.Dense(sizes[-1])])


def clear_all_caches():
    """``jax.clear_caches()`` and every memoized factory of fnn (compiled steps, epochs, inits)."""
    jax.clear_caches()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "fnn" or name.startswith("fnn.")):
            continue
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) == name and callable(
                    getattr(value, "cache_clear", None)):
                value.cache_clear()


def epoch_keys(key, epoch):
    """``(shuffle_key, steps_key)`` of epoch ``epoch``, derived as ``fnn.fit`` does."""
    return jax.random.split(jax.random.fold_in(jax.random.split(key)[1], epoch))


def hand_written(model, opt, batch, steps):
    """The hand-written epochs, ``{name: runner(params, opt_state, x, y, key, epoch)}``.

    Each runner returns ``(params, opt_state)`` after bringing the epoch's loss to the host.
    """
    n = steps * batch
    loss_fn = fnn.losses.sparse_softmax_cross_entropy

    def train_step(params, opt_state, xb, yb):
        def objective(p):
            return loss_fn(model.apply(p, {}, xb)[0], yb)
        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return fnn.optim.apply_updates(params, updates), opt_state, loss

    def scan_over_index(params, opt_state, batch_of):
        def body(carry, i):
            params, opt_state, loss = train_step(*carry, *batch_of(i))
            return (params, opt_state), loss
        (params, opt_state), losses = lax.scan(body, (params, opt_state),
                                               jnp.arange(steps, dtype=jnp.int32))
        return params, opt_state, jnp.mean(losses)

    @jax.jit
    def gathered_epoch(x, y, key, epoch):
        perm = shuffled_indices(epoch_keys(key, epoch)[0], n)
        return x[perm].reshape(steps, batch, -1), y[perm].reshape(steps, batch)

    @jax.jit
    def indexed_step(params, opt_state, xs, ys, i):
        return train_step(params, opt_state, xs[i], ys[i])

    def run_steps(params, opt_state, x, y, key, epoch):
        xs, ys = gathered_epoch(x, y, key, epoch)
        for i in range(steps):
            params, opt_state, loss = indexed_step(params, opt_state, xs, ys, i)
        float(loss)
        return params, opt_state

    @jax.jit
    def scan_index(params, opt_state, x, y, key, epoch):
        perm = shuffled_indices(epoch_keys(key, epoch)[0], n)

        def batch_of(i):
            idx = lax.dynamic_slice_in_dim(perm, i * batch, batch)
            return jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0)
        return scan_over_index(params, opt_state, batch_of)

    @jax.jit
    def scan_permutation(params, opt_state, x, y, key, epoch):
        perm = jax.random.permutation(epoch_keys(key, epoch)[0], n)
        xs, ys = x[perm].reshape(steps, batch, -1), y[perm].reshape(steps, batch)

        def body(carry, b):
            params, opt_state, loss = train_step(*carry, *b)
            return (params, opt_state), loss
        (params, opt_state), losses = lax.scan(body, (params, opt_state), (xs, ys))
        return params, opt_state, jnp.mean(losses)

    @jax.jit
    def scan_contiguous(params, opt_state, x, y, key, epoch):
        del key, epoch
        return scan_over_index(params, opt_state, lambda i: (
            lax.dynamic_slice_in_dim(x, i * batch, batch),
            lax.dynamic_slice_in_dim(y, i * batch, batch)))

    def synced(epoch_fn):
        def run(params, opt_state, x, y, key, epoch):
            params, opt_state, loss = epoch_fn(params, opt_state, x, y, key, epoch)
            float(loss)
            return params, opt_state
        return run

    return {HAND_STEP: run_steps, SCAN_INDEX: synced(scan_index),
            SCAN_PERM: synced(scan_permutation), SCAN_NONE: synced(scan_contiguous)}


def measure(case, reps, epochs, strategies):
    sizes, batch, steps = case["sizes"], case["batch"], case["steps"]
    n = steps * batch
    model, opt = mlp(sizes), fnn.optim.adam(1e-3)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(k1, (n, sizes[0]), jnp.float32)
    y = jax.random.randint(k2, (n,), 0, sizes[-1])
    params, _ = model.init(k3, x[:1])
    fit_key = jax.random.key(1)
    runners = hand_written(model, opt, batch, steps)

    def hand(runner):
        def go(n_epochs):
            p, o = params, opt.init(params)
            for e in range(n_epochs):
                p, o = runner(p, o, x, y, fit_key, e)
            return p
        return go

    def fit(**options):
        def go(n_epochs):
            return fnn.fit(model, "sparse_softmax_cross_entropy", opt, (x, y), epochs=n_epochs,
                           batch_size=batch, key=fit_key, params=params, progress=False,
                           **options).params
        return go

    makers = {FIT: lambda: fit(), FIT_NO_SHUFFLE: lambda: fit(shuffle=False),
              FIT_CALLBACK: lambda: fit(callbacks=[lambda e, logs: None]),
              FIT_MONITOR: lambda: fit(monitor=fnn.train.Monitor())}
    variants = {name: makers[name]() if name in makers else hand(runners[name])
                for name in case["variants"]}
    if case["strategies"]:
        variants.update({f"fit {s}": fit(strategy=s) for s in strategies})
    compile_s, final = {}, {}
    for name, go in variants.items():
        clear_all_caches()
        start = time.perf_counter()
        go(1)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        final[name] = jax.block_until_ready(go(1))
        compile_s[name] = cold - (time.perf_counter() - start)
    differences = {}
    for name, ref in REFERENCE.items():
        if name in final and ref in final:
            differences[name, ref] = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
                jax.tree.leaves(final[name]), jax.tree.leaves(final[ref])))
    for go in variants.values():  # compile again what the later clear_all_caches dropped
        go(1)
    per_step = {name: [] for name in variants}
    for rep in range(reps):
        order = list(variants) if rep % 2 == 0 else list(reversed(variants))
        for name in order:
            start = time.perf_counter()
            variants[name](epochs)
            per_step[name].append((time.perf_counter() - start) / (epochs * steps) * 1e6)
    return dict(case=case, epochs=epochs, per_step=per_step, compile_s=compile_s,
                differences=differences)


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


def _ratio(per_step, a, b):
    """``a / b`` per step: ``(ratio of medians, ratio of minima, median of paired ratios)``."""
    pa, pb = per_step[a], per_step[b]
    paired = statistics.median(u / v for u, v in zip(pa, pb))
    return statistics.median(pa) / statistics.median(pb), min(pa) / min(pb), paired


def _ratio_line(per_step, a, b, goal=None):
    med, mins, paired = _ratio(per_step, a, b)
    return (f"{a} / {b}: per step {med:.3f} (medians), {mins:.3f} (minima), {paired:.3f} "
            f"(median of paired ratios)" + (f"; goal <= {goal}" if goal else ""))


def report(results, reps):
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
             f"{os.cpu_count()} cpus, {platform.processor() or platform.machine()}, "
             f"jax {jax.__version__}, load average {os.getloadavg()[0]:.1f}, {reps} reps", ""]
    for result in results:
        case, per_step, compile_s = result["case"], result["per_step"], result["compile_s"]
        lines += [f"MLP {'-'.join(map(str, case['sizes']))}, batch {case['batch']}, Adam, "
                  f"{case['steps']} steps/epoch, {result['epochs']} epochs timed",
                  f"{'variant':<26} {'median us/step':>15} {'min us/step':>12} "
                  f"{'compile s':>10}"]
        for name, times in per_step.items():
            lines.append(f"{name:<26} {statistics.median(times):>15.1f} {min(times):>12.1f} "
                         f"{compile_s[name]:>10.2f}")
        if HAND_STEP in per_step:  # the 60-step cases: fit against the faster hand-written loop
            hands = [v for v in (HAND_STEP, SCAN_INDEX) if v in per_step]
            best = min(hands, key=lambda v: statistics.median(per_step[v]))
            lines.append(_ratio_line(per_step, FIT, best, 1.05) + " (the faster hand-written)")
            fastest = min(compile_s[v] for v in hands)
            lines.append(f"{FIT} compile / fastest hand-written compile: "
                         f"{compile_s[FIT] / fastest:.2f}; goal <= 1.5")
        if SCAN_NONE in per_step:  # the workload
            lines.append(_ratio_line(per_step, FIT, SCAN_NONE, 1.3))
            lines.append(_ratio_line(per_step, FIT, SCAN_INDEX))
            lines.append(_ratio_line(per_step, FIT_NO_SHUFFLE, SCAN_NONE))
            lines.append(_ratio_line(per_step, SCAN_INDEX, SCAN_NONE)
                         + " (the cost of the shuffle + gather)")
        if SCAN_PERM in per_step and SCAN_INDEX in per_step:
            lines.append(_ratio_line(per_step, SCAN_PERM, SCAN_INDEX)
                         + " (sort-based shuffle vs index shuffle)")
        if FIT_MONITOR in per_step:
            lines.append(_ratio_line(per_step, FIT_MONITOR, FIT, 1.3)
                         + " (the monitor's cost: norms, activation statistics, dead units)")
        if FIT_CALLBACK in per_step:
            lines.append(_ratio_line(per_step, FIT_CALLBACK, FIT)
                         + " (> 1: what pipelined dispatch saves)")
        if result["differences"]:
            lines.append("max |param difference| after 1 epoch: " + ", ".join(
                f"{a} vs {b} {d:.1e}" for (a, b), d in result["differences"].items()))
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed repetitions (default 7)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per timed run, for every case (default: each case's own)")
    names = [c["name"] for c in CASES] + ["cnn"]
    parser.add_argument("--cases", default=",".join(names),
                        help=f"comma-separated subset of {', '.join(names)} (default: all)")
    parser.add_argument("--no-strategies", action="store_true",
                        help="skip fit's strategy variants and the CNN")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not write benchmarks/results/fit.txt")
    args = parser.parse_args()
    chosen = set(args.cases.split(","))
    unknown = chosen - set(names)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}")
    strategies = () if args.no_strategies else STRATEGIES
    results = [measure(case, args.reps, args.epochs or case["epochs"], strategies)
               for case in CASES if case["name"] in chosen]
    text = report(results, args.reps)
    if not args.no_strategies and "cnn" in chosen:
        text += "\n" + measure_conv(max(1, min(3, args.reps))) + "\n"
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fit.txt")
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
