"""fnn.explain.integrated_gradients against Captum's IntegratedGradients on the same weights.

The workload of the issue: integrated gradients with 50 Gauss-Legendre steps
(both libraries' default rule) for 128 digit images through a small CNN,
target = each image's label, baseline = zeros. The images are scikit-learn's
8x8 digits (the ones that ship offline) resized to 28x28 (MNIST's size).

The CNN (``Conv 3x3 8 -> ReLU -> MaxPool 2 -> Conv 3x3 16 -> ReLU -> MaxPool 2
-> Flatten -> Dense 10``) is trained for 2 epochs with ``fnn.fit``, then
copied into PyTorch: conv kernels HWIO -> OIHW, the dense matrix transposed,
and the PyTorch model flattens its feature maps in fnn's (h, w, c) order, so
both compute the same function. The attributions must agree to 1e-4 (max
absolute difference, with images in [0, 1]).

Variants, timed alternately (the order flips every repetition), each call
whole (fnn's includes its checks and the transfer back to numpy, Captum's the
conversion of its result):

- ``fnn``: ``integrated_gradients(..., steps=50)``, all 6,400 rows in one call;
- ``fnn batch_size=1024``: in chunks of 1,024 rows (``lax.scan``);
- ``captum``: ``IntegratedGradients(model).attribute(..., n_steps=50)``;
- ``captum internal_batch_size=1024``.

Goal: fnn at most 0.5x Captum's time on this CPU. PyTorch and Captum live in
the benchmark environment only (``pip install torch==2.13.0 captum`` in a venv
of its own, beside ``pip install -e .``); never a dependency of fnn.

    python benchmarks/bench_explain.py [--reps 7] [--no-write]
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

STEPS, IMAGES, CHUNK = 50, 128, 1024


def digits_28():
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = jax.image.resize(jnp.asarray(digits.images[..., None] / 16.0, jnp.float32),
                         (len(digits.images), 28, 28, 1), "linear")
    return np.asarray(x), digits.target.astype(np.int32)


MODEL = fnn.Sequential({"conv1": fnn.Conv2D(8, 3, padding="same"), "relu1": fnn.Activation("relu"),
                        "pool1": fnn.MaxPool2D(2),
                        "conv2": fnn.Conv2D(16, 3, padding="same"), "relu2": fnn.Activation("relu"),
                        "pool2": fnn.MaxPool2D(2), "flatten": fnn.Flatten(),
                        "head": fnn.Dense(10)})


def torch_copy(params):
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
            self.head = torch.nn.Linear(7 * 7 * 16, 10)

        def forward(self, x):
            x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
            return self.head(x.permute(0, 2, 3, 1).flatten(1))     # fnn's (h, w, c) order

    net = Net().eval()
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            getattr(net, name).weight.copy_(torch.from_numpy(
                np.asarray(params[name]["w"]).transpose(3, 2, 0, 1).copy()))
            getattr(net, name).bias.copy_(torch.from_numpy(np.array(params[name]["b"])))
        net.head.weight.copy_(torch.from_numpy(np.asarray(params["head"]["w"]).T.copy()))
        net.head.bias.copy_(torch.from_numpy(np.array(params["head"]["b"])))
    return net


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import torch
    from captum.attr import IntegratedGradients

    x_all, y_all = digits_28()
    result = fnn.fit(MODEL, "sparse_softmax_cross_entropy", fnn.optim.adam(1e-3),
                     (x_all, y_all), epochs=2, batch_size=64, key=jax.random.key(0),
                     progress=False)
    params, state = result.params, result.state
    x, y = x_all[:IMAGES], y_all[:IMAGES]
    net = torch_copy(params)
    tx, ty = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(
        y.astype(np.int64))
    with torch.no_grad():
        logits_gap = float(np.max(np.abs(net(tx).numpy() - np.asarray(
            fnn.predict(MODEL, params, state, x)))))
    ig = IntegratedGradients(net)

    def fnn_variant(batch_size):
        def run():
            return np.asarray(fnn.explain.integrated_gradients(
                MODEL, params, state, x, target=y, steps=STEPS, batch_size=batch_size))
        return run

    def captum_variant(batch_size):
        def run():
            a = ig.attribute(tx, target=ty, n_steps=STEPS, method="gausslegendre",
                             internal_batch_size=batch_size)
            return a.detach().numpy().transpose(0, 2, 3, 1)
        return run

    variants = {"fnn": fnn_variant(None), f"fnn batch_size={CHUNK}": fnn_variant(CHUNK),
                "captum": captum_variant(None),
                f"captum internal_batch_size={CHUNK}": captum_variant(CHUNK)}
    outputs, first = {}, {}
    for name, run in variants.items():
        start = time.perf_counter()
        outputs[name] = run()
        first[name] = time.perf_counter() - start
        run()
    gaps = {name: float(np.max(np.abs(out - outputs["captum"]))) for name, out in
            outputs.items() if name != "captum"}
    times = {name: [] for name in variants}
    for rep in range(args.reps):
        order = list(variants) if rep % 2 == 0 else list(reversed(variants))
        for name in order:
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    scale = float(np.max(np.abs(outputs["captum"])))
    lines = [f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
             f"{os.cpu_count()} cpus, {platform.processor() or platform.machine()}, jax "
             f"{jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
             f"load average {os.getloadavg()[0]:.1f}, {args.reps} reps",
             f"integrated gradients, {STEPS} Gauss-Legendre steps, {IMAGES} digit images 28x28x1, "
             f"CNN conv8-pool-conv16-pool-dense10 (trained 2 epochs), target = label",
             f"max |logits fnn - torch| = {logits_gap:.1e}; max |attribution| = {scale:.3g}",
             f"{'variant':<36} {'median s':>9} {'min s':>9} {'first call s':>13} "
             f"{'max |a - captum|':>17}"]
    for name in variants:
        lines.append(f"{name:<36} {statistics.median(times[name]):>9.4f} "
                     f"{min(times[name]):>9.4f} {first[name]:>13.2f} "
                     f"{gaps.get(name, 0.0):>17.1e}")
    for a, b in (("fnn", "captum"), (f"fnn batch_size={CHUNK}",
                                      f"captum internal_batch_size={CHUNK}")):
        paired = statistics.median(u / v for u, v in zip(times[a], times[b]))
        lines.append(f"{a} / {b}: {statistics.median(times[a]) / statistics.median(times[b]):.3f}"
                     f" (medians), {paired:.3f} (median of paired ratios); goal <= 0.5")
    agree = all(g <= 1e-4 for g in gaps.values())
    lines.append(f"attributions agree to 1e-4: {agree}")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "explain.txt")
        with open(path, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
