"""Classify handwritten digits with a multilayer perceptron.

The whole workflow of the lecture notes on a real data set (scikit-learn's
8x8 digits, 1797 images, 10 classes):

1. split into train / dev / test sets (70/15/15, stratified by class);
2. standardise the inputs with the mean and deviation of the *training* set;
3. train an MLP 64-128-64-10 (ReLU, dropout, softmax cross-entropy, Adam)
   with mini-batch gradient descent, validating on the dev set after every
   epoch and stopping early when the dev loss stops improving (the best
   epoch's parameters are kept);
4. report accuracy, macro precision/recall/F1 and the confusion matrix on the
   test set, which was not looked at before.

Run:  python examples/digits_mlp.py            (about 10-20 s on a laptop CPU)
      python examples/digits_mlp.py --seed 3 --epochs 100 --dropout 0
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
    parser.add_argument("--epochs", type=int, default=60, help="most epochs to train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64],
                        help="hidden layer widths")
    parser.add_argument("--dropout", type=float, default=0.2, help="drop probability")
    parser.add_argument("--patience", type=int, default=10,
                        help="epochs without dev-loss improvement before stopping")
    parser.add_argument("--split", type=float, nargs=3, default=[0.7, 0.15, 0.15],
                        metavar=("TRAIN", "DEV", "TEST"), help="fractions of the data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build_model(hidden: list[int], dropout: float, num_classes: int = 10) -> fnn.Sequential:
    """Dense -> ReLU (-> Dropout) per hidden layer, then Dense logits."""
    layers = []
    for width in hidden:
        layers += [fnn.Dense(width), fnn.Activation("relu")]
        if dropout > 0:
            layers.append(fnn.Dropout(dropout))
    layers.append(fnn.Dense(num_classes))
    return fnn.Sequential(layers)


def format_confusion(matrix: np.ndarray) -> str:
    """The confusion matrix as text: rows are true classes, columns predictions."""
    k = matrix.shape[0]
    lines = ["true\\pred " + " ".join(f"{j:4d}" for j in range(k))]
    lines += [f"{i:9d} " + " ".join(f"{v:4d}" for v in row) for i, row in enumerate(matrix)]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, y = fnn.datasets.load_digits()
    split_key, fit_key = jax.random.split(jax.random.key(args.seed))
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = train_dev_test_split(
        x, y, fractions=args.split, key=split_key, stratify=y)
    scaler = fnn.preprocessing.fit_standardizer(x_train)          # training set only
    x_train, x_dev, x_test = (np.asarray(scaler.transform(a)) for a in (x_train, x_dev, x_test))
    print(f"digits: {len(x_train)} train / {len(x_dev)} dev / {len(x_test)} test examples, "
          f"{x.shape[1]} features, 10 classes")

    model = build_model(args.hidden, args.dropout)
    loss = "sparse_softmax_cross_entropy"
    result = fnn.fit(model, loss, fnn.optim.adam(args.learning_rate), (x_train, y_train),
                     epochs=args.epochs, batch_size=args.batch_size, key=fit_key,
                     validation_data=(x_dev, y_dev), metrics=["accuracy"],
                     early_stopping=fnn.EarlyStopping(monitor="val_loss", patience=args.patience),
                     progress=not args.no_progress)
    history = result.history
    best = int(np.argmin(history["val_loss"]))
    print(f"trained {len(history['loss'])} epochs; best dev loss {history['val_loss'][best]:.4f} "
          f"(dev accuracy {history['val_accuracy'][best]:.4f}) at epoch {best + 1}")

    test = fnn.evaluate(model, result.params, result.state, (x_test, y_test), loss=loss,
                        metrics=["accuracy"])
    logits = fnn.predict(model, result.params, result.state, x_test)
    scores = {name: float(getattr(fnn.metrics, name)(logits, y_test, average="macro"))
              for name in ("precision", "recall", "f1")}
    confusion = np.asarray(fnn.metrics.confusion_matrix(logits, y_test, 10))
    seconds = time.perf_counter() - start
    print(f"test loss {test['loss']:.4f}  test accuracy {test['accuracy']:.4f}")
    print("macro precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}".format(**scores))
    print("confusion matrix:\n" + format_confusion(confusion))
    print(f"time: {seconds:.1f} s")
    return {"test_accuracy": test["accuracy"], "test_loss": test["loss"], **scores,
            "confusion_matrix": confusion, "epochs": len(history["loss"]), "seconds": seconds}


if __name__ == "__main__":
    main()
