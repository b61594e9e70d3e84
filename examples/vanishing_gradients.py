"""Vanishing gradients, seen inside training: ten sigmoid layers against ten ReLU layers.

The notes' example: in a deep network of sigmoids, each layer multiplies the
backpropagated gradient by ``sigma'(z) <= 1/4``, so the first layers'
gradients shrink geometrically and they barely learn; ReLU (derivative 1 where
active) with He initialisation keeps them alive.

Two MLPs on scikit-learn's digits (64 standardised inputs, ten hidden layers
of 32 units, 10 classes), the same data, optimizer (SGD, learning rate 0.03) and key:
``sigmoid`` with Xavier (Glorot) initialisation and ``relu`` with He
initialisation. Both train with ``fit(..., monitor=fnn.train.Monitor())``,
which measures every layer's gradient norm inside the compiled epoch. The
script prints each run's per-layer gradient norms at the last epoch, its
accuracy, and ``fnn.train.diagnose``'s report; with ``--plot FILE``
(matplotlib) it draws the gradient norms per layer over the epochs for both
(``fnn.train.plot_monitor``), on a log scale.

Run:  python examples/vanishing_gradients.py               (about 15 s on a 2-core CPU)
      python examples/vanishing_gradients.py --plot vanishing.png
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import fnn
from fnn.train.data import train_dev_test_split


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--layers", type=int, default=10, help="hidden layers")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE", help="save the gradient norms as a PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def deep_mlp(activation: str, init: str, layers: int, width: int) -> fnn.Sequential:
    """``layers`` hidden Dense + activation pairs, then a Dense(10) of logits."""
    stack = []
    for _ in range(layers):
        stack += [fnn.Dense(width, w_init=init), fnn.Activation(activation)]
    return fnn.Sequential(stack + [fnn.Dense(10, w_init=init)])


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, y = fnn.datasets.load_digits()
    (x_train, y_train), (x_test, y_test) = train_dev_test_split(
        np.asarray(x, np.float32), y, fractions=(0.8, 0.2), key=jax.random.key(args.seed),
        stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6     # standardised inputs
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    runs = {}
    for activation, init in (("sigmoid", "glorot_uniform"), ("relu", "he_normal")):
        model = deep_mlp(activation, init, args.layers, args.width)
        result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.sgd(args.learning_rate),
                         (x_train, y_train), epochs=args.epochs, batch_size=64,
                         key=jax.random.key(args.seed), validation_data=(x_test, y_test),
                         metrics=["accuracy"], monitor=fnn.train.Monitor(),
                         progress=not args.no_progress)
        history = result.history
        norms = {name.split("/", 1)[1]: values[-1] for name, values in history.items()
                 if name.startswith("grad_norm/")}
        diagnosis = fnn.train.diagnose(result)
        runs[activation] = {"result": result, "norms": norms, "diagnosis": diagnosis}
        print(f"{activation} + {init}: test accuracy {history['val_accuracy'][-1]:.3f} after "
              f"{args.epochs} epochs")
        print("  gradient norm per layer at the last epoch (input side first):")
        print("  " + "  ".join(f"{layer}: {value:.1e}" for layer, value in norms.items()))
        print("  " + str(diagnosis).replace("\n", "\n  "))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
        for ax, (activation, run) in zip(axes, runs.items()):
            history = run["result"].history
            names = [n for n in history if n.startswith("grad_norm/")]
            colors = plt.cm.viridis(np.linspace(0, 1, len(names)))
            for color, name in zip(colors, names):
                ax.plot(np.arange(1, len(history[name]) + 1), history[name], color=color,
                        label=f"layer {name.split('/', 1)[1]}")
            ax.set_yscale("log")
            ax.set_xlabel("epoch")
            ax.set_title(f"{activation}: gradient norm per layer", fontsize=10)
        axes[0].set_ylabel("||dJ/dW|| (epoch RMS)")
        axes[1].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        plt.close(fig)
        print(f"drawn in {args.plot}")
    print(f"time: {time.perf_counter() - start:.1f} s")
    return {name: {"norms": run["norms"], "kinds": run["diagnosis"].kinds(),
                   "accuracy": run["result"].history["val_accuracy"][-1]}
            for name, run in runs.items()}


if __name__ == "__main__":
    main()
