"""The issue's 2-conv CNN: fnn.fit per step against hand-written JAX training the same model.

Model (28x28x1 input, batch 128, Adam 1e-3): Conv2D(32, 3x3, "same") -> ReLU ->
MaxPool2D(2) -> Conv2D(64, 3x3, "same") -> ReLU -> MaxPool2D(2) -> Flatten ->
Dense(128) -> ReLU -> Dense(10), sparse softmax cross-entropy. Synthetic data,
``--steps`` steps per epoch. Variants, timed alternately (the order flipping
every repetition), each over whole epochs after a warm-up epoch:

- ``fnn.fit``: ``fnn.fit(model, ...)`` with its default dispatch (on CPU the
  whole epoch in one ``lax.scan``: fnn's convolutions run as matmuls there);
- ``fnn.fit unroll 8`` / ``fnn.fit step``: ``strategy="unroll"`` (8 steps
  unrolled per call) and ``strategy="step"`` (one call per step);
- ``hand step``: a jitted step (value_and_grad, ``opt.update``, apply) called
  per batch from Python, batches gathered with the same shuffle as ``fit``;
- ``hand unroll 8``: 8 steps unrolled in one jitted call;
- ``hand scan``: the whole epoch in one ``lax.scan``;
- ``hand lax.conv unroll 8``: the model written directly with ``lax.conv`` and a
  reshape max pool, 8 steps unrolled per call (the fastest way for ``lax.conv`` on CPU);
- ``pytorch eager``: the same model, data, shuffle order and Adam in PyTorch
  (NCHW, its own layout), when ``torch`` is installed in the benchmark
  environment (``pip install torch``; never a dependency of fnn).

The other hand-written variants use the same fnn layers and ``fnn.optim.adam``,
so they measure what ``fit`` adds. Reported: median ms per step, ``fnn.fit /
fastest hand-written`` and ``fnn.fit / pytorch eager``.

    python benchmarks/bench_cnn.py [--reps 3] [--steps 16] [--tune-allocator] [--no-write]
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


def build_model() -> fnn.Sequential:
    return fnn.Sequential([
        fnn.Conv2D(32, 3, padding="same"), fnn.Activation("relu"), fnn.MaxPool2D(2),
        fnn.Conv2D(64, 3, padding="same"), fnn.Activation("relu"), fnn.MaxPool2D(2),
        fnn.Flatten(), fnn.Dense(128), fnn.Activation("relu"), fnn.Dense(10)])


def lax_conv_objective(p, xb, yb):
    """The same model written directly with ``lax.conv_general_dilated`` and a reshape max
    pool (ties split by ``jnp.max``), as a JAX user would write it by hand."""
    def conv_relu_pool(h, layer):
        h = lax.conv_general_dilated(h, layer["w"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(h + layer["b"])
        b, height, width, c = h.shape
        return h.reshape(b, height // 2, 2, width // 2, 2, c).max(axis=(2, 4))
    h = conv_relu_pool(conv_relu_pool(xb, p["0"]), p["3"])
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ p["7"]["w"] + p["7"]["b"])
    logits = h @ p["9"]["w"] + p["9"]["b"]
    return fnn.losses.sparse_softmax_cross_entropy(logits, yb)


def pytorch_variant(x, y, perm_of, key, steps, batch):
    """The same model, data, shuffle and Adam in PyTorch eager (NCHW, its native layout);
    None when torch is not installed (it is never a dependency of fnn)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    tx = torch.from_numpy(np.array(x.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y.astype(np.int64))
    orders = [torch.from_numpy(np.asarray(perm_of(jax.random.fold_in(key, epoch))).astype(
        np.int64)) for epoch in range(2)]

    def run(epochs):
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        for epoch in range(epochs):
            for idx in orders[epoch % 2]:
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(tx[idx]), ty[idx])
                loss.backward()
                opt.step()
        loss.item()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=16, help="steps per epoch (batch 128)")
    parser.add_argument("--tune-allocator", action="store_true",
                        help="call fnn.train.tune_cpu_allocator() first")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = parser.parse_args()
    if args.tune_allocator:
        fnn.train.tune_cpu_allocator()
    batch, steps = 128, args.steps
    n = batch * steps
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.standard_normal((n, 28, 28, 1), dtype=np.float32))
    y = jax.device_put(rng.integers(0, 10, n).astype(np.int32))
    model, opt = build_model(), fnn.optim.adam(1e-3)
    loss_fn = fnn.losses.sparse_softmax_cross_entropy
    key = jax.random.key(0)
    params0, _ = model.init(jax.random.split(key)[0], x[:1])
    params0 = jax.device_put(params0, jax.devices()[0])

    def objective(p, xb, yb):
        return loss_fn(model.apply(p, {}, xb)[0], yb)

    def make_step(objective):
        def one_step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(objective)(params, jnp.take(x, idx, axis=0),
                                                        jnp.take(y, idx, axis=0))
            updates, opt_state = opt.update(grads, opt_state, params)
            return (fnn.optim.apply_updates(params, updates), opt_state), loss
        return one_step

    one_step = make_step(objective)
    step = jax.jit(lambda carry, idx: one_step(carry, idx))
    unroll8 = jax.jit(lambda carry, idxs: lax.scan(one_step, carry, idxs, unroll=True))
    lax_unroll8 = jax.jit(lambda carry, idxs: lax.scan(make_step(lax_conv_objective), carry,
                                                       idxs, unroll=True))
    scan = jax.jit(lambda carry, idxs: lax.scan(one_step, carry, idxs))
    perm_of = jax.jit(lambda k: shuffled_indices(k, n).reshape(steps, batch))

    def hand(kind):
        def run(epochs):
            carry = (params0, opt.init(params0))
            for epoch in range(epochs):
                idxs = perm_of(jax.random.fold_in(key, epoch))
                if kind == "step":
                    for i in range(steps):
                        carry, loss = step(carry, idxs[i])
                elif kind in ("unroll", "lax unroll"):
                    chunk = unroll8 if kind == "unroll" else lax_unroll8
                    for i in range(0, steps, 8):
                        carry, loss = chunk(carry, idxs[i:i + 8])
                else:
                    carry, loss = scan(carry, idxs)
            jax.block_until_ready(carry)
        return run

    def fit(**kwargs):
        def run(epochs):
            fnn.fit(model, loss_fn, opt, (x, y), epochs=epochs, batch_size=batch, key=key,
                    params=params0, progress=False, **kwargs)
        return run

    variants = {"fnn.fit": fit(), "fnn.fit unroll 8": fit(strategy="unroll"),
                "fnn.fit step": fit(strategy="step"),
                "hand step": hand("step"), "hand unroll 8": hand("unroll"),
                "hand scan": hand("scan"), "hand lax.conv unroll 8": hand("lax unroll")}
    if not args.no_torch:
        torch_run = pytorch_variant(np.asarray(x), np.asarray(y), perm_of, key, steps, batch)
        if torch_run is not None:
            variants["pytorch eager"] = torch_run
    for run in variants.values():      # compile everything (two epochs: both input kinds)
        run(2)
    times = {name: [] for name in variants}
    names = list(variants)
    for rep in range(args.reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            variants[name](2)
            times[name].append((time.perf_counter() - start) / (2 * steps) * 1e3)
    med = {name: statistics.median(t) for name, t in times.items()}
    fastest = min((k for k in med if k.startswith("hand")), key=med.get)   # (any hand variant)
    torch_line = []
    if "pytorch eager" in med:
        import torch
        torch_line = [f"pytorch {torch.__version__}, {torch.get_num_threads()} threads"]
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} "
             f"cpus, {platform.processor() or platform.machine()}, jax {jax.__version__}, load "
             f"average {os.getloadavg()[0]:.1f}, {args.reps} reps, allocator "
             f"{'tuned' if args.tune_allocator else 'glibc defaults'}",
             f"CNN conv3x3(32)-pool-conv3x3(64)-pool-dense(128)-dense(10), 28x28x1, batch {batch}, "
             f"Adam, {steps} steps/epoch", *torch_line,
             f"{'variant':<24} {'median ms/step':>15} {'min':>8}"]
    lines += [f"{name:<24} {med[name]:>15.2f} {min(times[name]):>8.2f}" for name in names]
    lines += [f"{name} / {fastest} (fastest hand-written): {med[name] / med[fastest]:.3f}"
              for name in names if name.startswith("fnn.fit")]
    if "pytorch eager" in med:
        lines += [f"{name} / pytorch eager: {med[name] / med['pytorch eager']:.3f}"
                  for name in names if name.startswith("fnn.fit")]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        name = "cnn_tuned.txt" if args.tune_allocator else "cnn.txt"
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", name),
                  "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
