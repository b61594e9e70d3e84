"""Classify handwritten digits with a convolutional network, and draw what it learned.

scikit-learn's 8x8 digits (1797 images, offline) as 8x8x1 images:

1. split 70/15/15 (stratified); the pixels come in [0, 1] (``load_digits`` divides
   the source's 0..16 by 16);
2. train a CNN: Conv2D(32, 3x3, same) -> ReLU -> MaxPool2D(2) -> Conv2D(64, 3x3,
   same) -> ReLU -> MaxPool2D(2) -> Flatten -> Dropout(0.5) -> Dense(10), with
   Adam, mini-batches of 32, training images shifted at random by up to one
   pixel, early stopping on the dev loss (best epoch kept);
3. report test accuracy, macro F1 and the confusion matrix;
4. with ``--plot FILE`` (needs matplotlib), draw the 32 learned first-layer
   filters and the misclassified test digits with their true and predicted
   labels.

Run:  python examples/digits_cnn.py                     (about a minute on a 2-core CPU)
      python examples/digits_cnn.py --plot cnn.png --seed 1
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
    parser.add_argument("--epochs", type=int, default=80, help="most epochs to train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--filters", type=int, nargs=2, default=[32, 64],
                        help="filters of the two convolutions")
    parser.add_argument("--dropout", type=float, default=0.5, help="drop probability")
    parser.add_argument("--shift", type=int, default=1,
                        help="random shifts of the training images by up to this many pixels")
    parser.add_argument("--patience", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE", help="save filters and mistakes as a PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build_model(filters: list[int], dropout: float) -> fnn.Sequential:
    """Two conv / ReLU / 2x2 max-pool blocks, then dropout and a dense softmax layer."""
    layers = []
    for width in filters:
        layers += [fnn.Conv2D(width, (3, 3), padding="same", w_init="he_normal"),
                   fnn.Activation("relu"), fnn.MaxPool2D(2)]
    layers += [fnn.Flatten(), fnn.Dropout(dropout), fnn.Dense(10)]
    return fnn.Sequential(layers)


def plot(path: str, params: dict, images: np.ndarray, true: np.ndarray,
         predicted: np.ndarray) -> None:
    """First-layer filters (top) and up to 16 misclassified digits (bottom) in one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = np.asarray(params["0"]["w"])[:, :, 0, :]               # (3, 3, filters)
    wrong = np.flatnonzero(true != predicted)[:16]
    rows = 3 if len(wrong) else 2
    fig, axes = plt.subplots(rows, 16, figsize=(16, 1.2 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes[:2].ravel()):
        if i < w.shape[-1]:
            ax.imshow(w[:, :, i], cmap="RdBu_r", vmin=-abs(w).max(), vmax=abs(w).max())
        ax.axis("off")
    for i, ax in enumerate(axes[2:].ravel()):
        if i < len(wrong):
            k = wrong[i]
            ax.imshow(images[k, :, :, 0], cmap="gray_r")
            ax.set_title(f"{true[k]} -> {predicted[k]}", fontsize=9)
        ax.axis("off")
    fig.suptitle("learned 3x3 filters of the first convolution (top); misclassified test "
                 "digits, true -> predicted (bottom)")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, y = fnn.datasets.load_digits()
    x = np.asarray(x, np.float32).reshape(-1, 8, 8, 1)   # in [0, 1]; (batch, H, W, channels)
    split_key, fit_key = jax.random.split(jax.random.key(args.seed))
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = train_dev_test_split(
        x, y, fractions=(0.7, 0.15, 0.15), key=split_key, stratify=y)
    print(f"digits: {len(x_train)} train / {len(x_dev)} dev / {len(x_test)} test images, "
          f"8x8x1, 10 classes")

    model = build_model(args.filters, args.dropout)
    print(fnn.summary(model, x_train[:1]))
    loss = "sparse_softmax_cross_entropy"
    result = fnn.fit(model, loss, fnn.optim.adam(args.learning_rate), (x_train, y_train),
                     epochs=args.epochs, batch_size=args.batch_size, key=fit_key,
                     validation_data=(x_dev, y_dev), metrics=["accuracy"],
                     augment=(fnn.train.augment.random_shift(args.shift) if args.shift
                              else None),
                     early_stopping=fnn.EarlyStopping(monitor="val_loss", patience=args.patience),
                     progress=not args.no_progress)
    history = result.history
    best = int(np.argmin(history["val_loss"]))
    print(f"trained {len(history['loss'])} epochs; best dev loss {history['val_loss'][best]:.4f} "
          f"(dev accuracy {history['val_accuracy'][best]:.4f}) at epoch {best + 1}")

    logits = fnn.predict(model, result.params, result.state, x_test)
    predicted = np.asarray(np.argmax(logits, axis=-1))
    accuracy = float(fnn.metrics.accuracy(logits, y_test))
    f1 = float(fnn.metrics.f1(logits, y_test, average="macro"))
    confusion = np.asarray(fnn.metrics.confusion_matrix(logits, y_test, 10))
    print(f"test accuracy {accuracy:.4f}  macro F1 {f1:.4f}  "
          f"({int(np.sum(predicted != y_test))} of {len(y_test)} wrong)")
    print("confusion matrix (rows: true, columns: predicted):\n" + str(confusion))
    if args.plot:
        plot(args.plot, result.params, x_test, np.asarray(y_test), predicted)
        print(f"filters and mistakes drawn in {args.plot}")
    seconds = time.perf_counter() - start
    print(f"time: {seconds:.1f} s")
    return {"test_accuracy": accuracy, "f1": f1, "confusion_matrix": confusion,
            "epochs": len(history["loss"]), "seconds": seconds}


if __name__ == "__main__":
    main()
