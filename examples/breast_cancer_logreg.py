"""Logistic regression on the Wisconsin breast cancer data set.

Logistic regression as in the notes: ``z = w . x + b``, ``y_hat = sigmoid(z)``,
trained on the binary cross-entropy
``L = -(y log y_hat + (1 - y) log(1 - y_hat))`` with batch gradient descent
(every step uses all the training examples). The model is a single
``fnn.Dense(1)`` producing the logit ``z``; the loss
``binary_cross_entropy_with_logits`` applies the sigmoid inside, which is
numerically stable. The 30 features (sizes, textures, ...) are standardised
with training-set statistics; label 1 = benign, 0 = malignant.

Run:  python examples/breast_cancer_logreg.py          (a few seconds)
      python examples/breast_cancer_logreg.py --epochs 1000 --learning-rate 0.1
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
    parser.add_argument("--epochs", type=int, default=300,
                        help="gradient-descent steps (one per epoch: batch gradient descent)")
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, y = fnn.datasets.load_breast_cancer()
    y = y.astype(np.float32).reshape(-1, 1)               # (n, 1) targets for a (n, 1) logit
    split_key, fit_key = jax.random.split(jax.random.key(args.seed))
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = train_dev_test_split(
        x, y, fractions=(0.7, 0.15, 0.15), key=split_key, stratify=y[:, 0])
    scaler = fnn.preprocessing.fit_standardizer(x_train)
    x_train, x_dev, x_test = (np.asarray(scaler.transform(a)) for a in (x_train, x_dev, x_test))
    print(f"breast cancer: {len(x_train)} train / {len(x_dev)} dev / {len(x_test)} test, "
          f"{x.shape[1]} features; {int(y.sum())} benign, {int(len(y) - y.sum())} malignant")

    model = fnn.Dense(1)                                   # z = x w + b
    loss = "binary_cross_entropy_with_logits"
    result = fnn.fit(model, loss, fnn.optim.sgd(args.learning_rate), (x_train, y_train),
                     epochs=args.epochs, batch_size=None, key=fit_key,
                     validation_data=(x_dev, y_dev), metrics=["accuracy"],  # read as logits: the loss says so
                     progress=not args.no_progress)
    history = result.history
    print(f"after {len(history['loss'])} steps: train loss {history['loss'][-1]:.4f}, "
          f"dev loss {history['val_loss'][-1]:.4f}, "
          f"dev accuracy {history['val_accuracy'][-1]:.4f}")

    # One pass over the test set; the metrics threshold the logits at 0 (sigmoid(z) >= 0.5),
    # since the loss takes logits. Positive class: 1 = benign.
    test = fnn.evaluate(model, result.params, result.state, (x_test, y_test), loss=loss,
                        metrics=["accuracy", "precision", "recall", "f1"])
    majority = float(max(y_test.mean(), 1 - y_test.mean()))
    seconds = time.perf_counter() - start
    print(f"test loss {test['loss']:.4f}  accuracy {test['accuracy']:.4f} "
          f"(always predicting the majority class: {majority:.4f})")
    print("test precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}".format(**test))
    print(f"time: {seconds:.1f} s")
    return {**{f"test_{k}": v for k, v in test.items()}, "baseline_accuracy": majority,
            "seconds": seconds}


if __name__ == "__main__":
    main()
