"""Adam update speed: fnn.optim.adam against a hand-written jax.tree.map Adam.

Both steps compute, over the same ~10M-parameter float32 pytree,

    m <- b1 * m + (1 - b1) * g
    v <- b2 * v + (1 - b2) * g^2
    theta <- theta - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

and are jitted the same way (params and optimizer state donated, results fed
back in). After a warm-up, the two are timed alternately (to cancel drift from
other load on the machine), each call ended with ``block_until_ready``, and the
medians are compared. Prints both times and the ratio fnn / hand-written, and
writes them to ``benchmarks/results/optim_adam.txt``.

Run: ``python benchmarks/bench_optim_adam.py [--reps 60] [--no-write]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp

import fnn

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8

# ~10M float32 parameters in leaves of different shapes and ranks.
SHAPES = {
    "embedding": (10_000, 256),
    "dense_0": {"w": (1024, 4096), "b": (4096,)},
    "dense_1": {"w": (4096, 768), "b": (768,)},
    "conv": {"w": (3, 3, 64, 128), "b": (128,)},
    "norm": {"scale": (768,), "offset": (768,)},
}


def make_tree(key, shapes):
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [0.01 * jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, leaves)])


# ------------------------------------------------------------- hand-written


def hand_init(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return (jnp.zeros((), jnp.int32), zeros, jax.tree.map(jnp.zeros_like, params))


def hand_step(params, state, grads):
    count, m, v = state
    count = count + 1
    m = jax.tree.map(lambda m, g: B1 * m + (1 - B1) * g, m, grads)
    v = jax.tree.map(lambda v, g: B2 * v + (1 - B2) * g * g, v, grads)
    t = count.astype(jnp.float32)
    bc1, bc2 = 1 - B1**t, 1 - B2**t
    params = jax.tree.map(lambda p, m, v: p - LR * (m / bc1) / (jnp.sqrt(v / bc2) + EPS), params, m, v)
    return params, (count, m, v)


# ----------------------------------------------------------------------- fnn

OPT = fnn.optim.adam(learning_rate=LR, b1=B1, b2=B2, eps=EPS)


def fnn_step(params, opt_state, grads):
    updates, opt_state = OPT.update(grads, opt_state, params)
    return fnn.optim.apply_updates(params, updates), opt_state


# -------------------------------------------------------------------- timing


def timed(step, params, state, grads):
    start = time.perf_counter()
    params, state = step(params, state, grads)
    jax.block_until_ready((params, state))
    return time.perf_counter() - start, params, state


def compiled_cost(jitted, *args):
    """XLA's static cost of the compiled step: flops, transcendentals, bytes, fusions."""
    compiled = jitted.lower(*args).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return (f"flops {cost.get('flops', 0):.4g}, transcendentals {cost.get('transcendentals', 0):.4g}, "
            f"bytes accessed {cost.get('bytes accessed', 0):.4g}, fusions {compiled.as_text().count('fusion(')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60, help="timed calls of each step")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls of each step first")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/optim_adam.txt")
    args = parser.parse_args()

    key_p, key_g = jax.random.split(jax.random.key(0))
    grads = make_tree(key_g, SHAPES)
    n_params = sum(x.size for x in jax.tree.leaves(grads))

    steps = {
        "fnn.optim.adam": jax.jit(fnn_step, donate_argnums=(0, 1)),
        "hand-written": jax.jit(hand_step, donate_argnums=(0, 1)),
    }
    carry = {}
    for name, init in (("fnn.optim.adam", OPT.init), ("hand-written", hand_init)):
        params = make_tree(key_p, SHAPES)
        # Distinct buffers for every state leaf: donation rejects a buffer passed twice
        # (an init that returns the same zeros tree for two moments would fail here).
        carry[name] = (params, jax.tree.map(jnp.copy, init(params)))

    costs = {name: compiled_cost(steps[name], *carry[name], grads) for name in steps}

    # Same results (guards against timing two different computations).
    for name in steps:
        _, p, s = timed(steps[name], *carry[name], grads)
        carry[name] = (p, s)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
        jax.tree.leaves(carry["fnn.optim.adam"][0]), jax.tree.leaves(carry["hand-written"][0])))
    assert diff < 1e-6, f"fnn and hand-written Adam disagree by {diff}"

    times = {name: [] for name in steps}
    for rep in range(args.warmup + args.reps):
        order = list(steps) if rep % 2 == 0 else list(steps)[::-1]  # alternate who goes first
        for name in order:
            seconds, p, s = timed(steps[name], *carry[name], grads)
            carry[name] = (p, s)
            if rep >= args.warmup:
                times[name].append(seconds)

    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = med["fnn.optim.adam"] / med["hand-written"]
    paired = statistics.median(a / b for a, b in zip(times["fnn.optim.adam"], times["hand-written"]))
    best = min(times["fnn.optim.adam"]) / min(times["hand-written"])
    lines = [
        "Adam update + apply_updates, jitted, params and state donated",
        f"parameters: {n_params:,} float32 in {len(jax.tree.leaves(grads))} leaves",
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at the end",
        f"repetitions: {args.reps} each (after {args.warmup} warm-up), alternating order, median",
        f"max |params difference| after one step: {diff:.1e}",
        *(f"compiled {name:16s} {costs[name]}" for name in steps),
        *(f"{name:16s} median {1e3 * med[name]:8.3f} ms   "
          f"(min {1e3 * min(times[name]):.3f}, max {1e3 * max(times[name]):.3f})" for name in steps),
        f"ratio fnn / hand-written: {ratio:.3f} (medians); {paired:.3f} (median of paired calls); "
        f"{best:.3f} (minima)",
    ]
    print("\n".join(lines))
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "optim_adam.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
