"""A residual CNN with batch normalisation and two heads: the digit, and whether it is even.

The notes' multi-task learning on scikit-learn's 8x8 digits (offline): one
shared trunk learns features that serve both tasks.

- trunk: Conv2D(32, 3x3, same) -> BatchNorm -> ReLU, then a residual block
  ``x + Conv-BN-ReLU-Conv-BN(x)`` (the identity path carries the gradient back,
  the notes' answer to vanishing gradients), ReLU, MaxPool2D(2), Flatten;
- heads (``fnn.Parallel``): ``"digit"`` Dense(10) with softmax cross-entropy,
  ``"parity"`` Dense(1) with the binary cross-entropy on logits (1 = odd);
- ``fnn.fit`` minimises ``loss = digit_loss + w * parity_loss``
  (``loss_weights``), reports each part per epoch, and threads BatchNorm's
  running statistics through every step; evaluation uses them.

Run:  python examples/digits_multitask.py              (about 30 s on a 2-core CPU)
      python examples/digits_multitask.py --parity-weight 0.2 --seed 1
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import fnn


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--parity-weight", type=float, default=0.5,
                        help="weight of the parity loss in the total")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build_model(filters: int) -> fnn.Sequential:
    """Conv-BN-ReLU stem, one residual block, pooling, and a head per task."""
    def conv():
        return fnn.Conv2D(filters, (3, 3), padding="same", use_bias=False, w_init="he_normal")

    block = fnn.Residual(fnn.Sequential([conv(), fnn.BatchNorm(), fnn.Activation("relu"),
                                         conv(), fnn.BatchNorm()]))
    return fnn.Sequential([
        conv(), fnn.BatchNorm(), fnn.Activation("relu"),
        block, fnn.Activation("relu"), fnn.MaxPool2D(2), fnn.Flatten(),
        fnn.Parallel({"digit": fnn.Dense(10), "parity": fnn.Dense(1)})])


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, digit = fnn.datasets.load_digits()
    x = np.asarray(x, np.float32).reshape(-1, 8, 8, 1)   # in [0, 1]
    y = {"digit": np.asarray(digit), "parity": (np.asarray(digit) % 2).astype(np.float32)[:, None]}
    split_key, fit_key = jax.random.split(jax.random.key(args.seed))
    train, dev, test = (np.asarray(i) for i in fnn.train.split_indices(
        len(x), (0.7, 0.15, 0.15), key=split_key, stratify=digit))

    def part(idx):
        return x[idx], {name: values[idx] for name, values in y.items()}

    print(f"digits: {len(train)} train / {len(dev)} dev / {len(test)} test images; tasks: "
          "digit (10 classes) and parity (odd = 1)")
    model = build_model(args.filters)
    loss = {"digit": "sparse_softmax_cross_entropy", "parity": "binary_cross_entropy_with_logits"}
    weights = {"digit": 1.0, "parity": args.parity_weight}
    metrics = {"digit": ["accuracy"], "parity": ["accuracy"]}
    result = fnn.fit(model, loss, fnn.optim.adam(args.learning_rate), part(train),
                     loss_weights=weights, metrics=metrics, validation_data=part(dev),
                     epochs=args.epochs, batch_size=args.batch_size, key=fit_key,
                     progress=not args.no_progress)
    h = result.history
    print(f"last epoch: loss {h['loss'][-1]:.4f} = digit {h['digit_loss'][-1]:.4f} + "
          f"{args.parity_weight} x parity {h['parity_loss'][-1]:.4f}; dev digit accuracy "
          f"{h['val_digit_accuracy'][-1]:.4f}, dev parity accuracy "
          f"{h['val_parity_accuracy'][-1]:.4f}")
    scores = fnn.evaluate(model, result.params, result.state, part(test), loss=loss,
                          loss_weights=weights, metrics=metrics)
    print(f"test: digit accuracy {scores['digit_accuracy']:.4f}, parity accuracy "
          f"{scores['parity_accuracy']:.4f}, loss {scores['loss']:.4f}")
    print(f"BatchNorm running mean of the stem (first 4 channels): "
          f"{np.round(np.asarray(result.state['1']['mean'][:4]), 3)}")
    seconds = time.perf_counter() - start
    print(f"time: {seconds:.1f} s")
    return {**scores, "epochs": len(h["loss"]), "history": h, "seconds": seconds}


if __name__ == "__main__":
    main()
