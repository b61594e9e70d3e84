"""The issue's LSTM: fnn.fit per step against hand-written JAX and PyTorch eager.

Model: LSTM(128) over 50 steps of 16 features, its last hidden state into
Dense(10), sparse softmax cross-entropy, batch 64, Adam 1e-3, synthetic data,
``--steps`` steps per epoch. Variants, timed alternately (the order flipping
every repetition), over whole epochs after warm-up:

- ``fnn.fit``: ``fnn.fit`` with its default dispatch (the whole epoch in one
  ``lax.scan``) and ``fnn.LSTM(128, unroll=U)`` for each ``--unrolls`` value;
- ``hand scan``: hand-written JAX, the whole epoch in one ``lax.scan``, the
  LSTM written directly (input projection of all steps in one matmul, only
  ``h @ w_h`` in the time loop), the same shuffle as ``fit``;
- ``hand step``: the same step, jitted and called per batch from Python;
- ``pytorch eager``: ``torch.nn.LSTM`` + ``nn.Linear`` with the same data,
  shuffle order and Adam, when ``torch`` is installed (never a dependency).

Reported: median ms per step, ``fnn.fit / fastest hand-written`` and
``fnn.fit / pytorch eager``.

    python benchmarks/bench_lstm.py [--reps 5] [--steps 32] [--unrolls 1,2,5]
                                    [--tune-allocator] [--no-torch] [--no-write]
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
from jax import lax

import fnn
from fnn.train import shuffled_indices

T, F, H, CLASSES, BATCH = 50, 16, 128, 10, 64


def hand_loss(p, xb, yb):
    """The LSTM written directly: one matmul for all steps' inputs, a scan for h @ w_h."""
    xp = jnp.einsum("btf,fg->tbg", xb, p["0"]["w_x"]) + p["0"]["b"]

    def cell(carry, xt):
        h, c = carry
        i, f, g, o = jnp.split(xt + h @ p["0"]["w_h"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((xb.shape[0], H), xb.dtype)
    (h, _), _ = lax.scan(cell, (zeros, zeros), xp)
    logits = h @ p["1"]["w"] + p["1"]["b"]
    return fnn.losses.sparse_softmax_cross_entropy(logits, yb)


def pytorch_variant(x, y, orders):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    lstm, head = torch.nn.LSTM(F, H, batch_first=True), torch.nn.Linear(H, CLASSES)
    tx, ty = torch.from_numpy(np.array(x)), torch.from_numpy(np.asarray(y).astype(np.int64))
    orders = [torch.from_numpy(np.asarray(o).astype(np.int64)) for o in orders]

    def run(epochs):
        opt = torch.optim.Adam(list(lstm.parameters()) + list(head.parameters()), 1e-3)
        for epoch in range(epochs):
            for idx in orders[epoch % 2]:
                opt.zero_grad(set_to_none=True)
                _, (h, _) = lstm(tx[idx])
                loss = torch.nn.functional.cross_entropy(head(h[-1]), ty[idx])
                loss.backward()
                opt.step()
        loss.item()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=32, help="steps per epoch (batch 64)")
    parser.add_argument("--unrolls", default="1,2,5", help="fnn.LSTM unroll values to time")
    parser.add_argument("--tune-allocator", action="store_true")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.tune_allocator:
        fnn.train.tune_cpu_allocator()
    steps, n = args.steps, BATCH * args.steps
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal((n, T, F), dtype=np.float32))
    y = jax.device_put(rng.integers(0, CLASSES, n).astype(np.int32))
    key = jax.random.key(0)
    opt, loss_fn = fnn.optim.adam(1e-3), fnn.losses.sparse_softmax_cross_entropy
    models = {u: fnn.Sequential([fnn.LSTM(H, unroll=u), fnn.Dense(CLASSES)])
              for u in map(int, args.unrolls.split(","))}
    params0, _ = next(iter(models.values())).init(jax.random.split(key)[0], x[:1])
    params0 = jax.device_put(params0, jax.devices()[0])
    perm_of = jax.jit(lambda k: shuffled_indices(k, n).reshape(steps, BATCH))
    orders = [perm_of(jax.random.fold_in(key, epoch)) for epoch in range(2)]

    def one_step(carry, idx):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(hand_loss)(params, jnp.take(x, idx, axis=0),
                                                    jnp.take(y, idx, axis=0))
        updates, opt_state = opt.update(grads, opt_state, params)
        return (fnn.optim.apply_updates(params, updates), opt_state), loss

    step = jax.jit(one_step)
    scan = jax.jit(lambda carry, idxs: lax.scan(one_step, carry, idxs))

    def hand(kind):
        def run(epochs):
            carry = (params0, opt.init(params0))
            for epoch in range(epochs):
                idxs = orders[epoch % 2]
                if kind == "step":
                    for i in range(steps):
                        carry, loss = step(carry, idxs[i])
                else:
                    carry, loss = scan(carry, idxs)
            jax.block_until_ready(carry)
        return run

    def fit(model):
        def run(epochs):
            fnn.fit(model, loss_fn, opt, (x, y), epochs=epochs, batch_size=BATCH, key=key,
                    params=params0, progress=False)
        return run

    variants = {f"fnn.fit unroll {u}": fit(m) for u, m in models.items()}
    variants.update({"hand scan": hand("scan"), "hand step": hand("step")})
    if not args.no_torch:
        torch_run = pytorch_variant(np.asarray(x), np.asarray(y), orders)
        if torch_run is not None:
            variants["pytorch eager"] = torch_run
    for run in variants.values():
        run(2)
    times = {name: [] for name in variants}
    names = list(variants)
    for rep in range(args.reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            variants[name](2)
            times[name].append((time.perf_counter() - start) / (2 * steps) * 1e3)
    med = {name: statistics.median(t) for name, t in times.items()}
    fastest = min((k for k in med if k.startswith("hand")), key=med.get)
    best_fit = min((k for k in med if k.startswith("fnn.fit")), key=med.get)
    torch_line = []
    if "pytorch eager" in med:
        import torch
        torch_line = [f"pytorch {torch.__version__}, {torch.get_num_threads()} threads"]
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} "
             f"cpus, {platform.processor() or platform.machine()}, jax {jax.__version__}, load "
             f"average {os.getloadavg()[0]:.1f}, {args.reps} reps, allocator "
             f"{'tuned' if args.tune_allocator else 'glibc defaults'}",
             f"LSTM({H}) over {T} steps x {F} features -> Dense({CLASSES}), batch {BATCH}, Adam, "
             f"{steps} steps/epoch", *torch_line,
             f"{'variant':<20} {'median ms/step':>15} {'min':>8}"]
    lines += [f"{name:<20} {med[name]:>15.2f} {min(times[name]):>8.2f}" for name in names]
    lines.append(f"{best_fit} / {fastest} (fastest hand-written): "
                 f"{med[best_fit] / med[fastest]:.3f}")
    if "pytorch eager" in med:
        lines.append(f"{best_fit} / pytorch eager: {med[best_fit] / med['pytorch eager']:.3f}")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        name = "lstm_tuned.txt" if args.tune_allocator else "lstm.txt"
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", name),
                  "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
