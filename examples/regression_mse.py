"""Regression with an MLP and the mean squared error, on the diabetes data set.

Predict a measure of diabetes progression one year ahead from 10 baseline
variables (442 patients). The network ends in a linear output unit (the
notes' output activation for regression) and minimises
``MSE = (1/m) sum_i (y_hat_i - y_i)^2``. Inputs *and* targets are
standardised with training-set statistics; predictions are mapped back to the
original units with ``Standardizer.inverse_transform`` before computing the
test MSE and MAE. A model is only useful if it beats the trivial baseline
that always predicts the training mean, so both are printed.

Run:  python examples/regression_mse.py            (a few seconds)
      python examples/regression_mse.py --hidden 64 32 --dropout 0.1
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
    parser.add_argument("--epochs", type=int, default=200, help="most epochs to train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, nargs="+", default=[32], help="hidden layer widths")
    parser.add_argument("--dropout", type=float, default=0.0, help="drop probability")
    parser.add_argument("--patience", type=int, default=20,
                        help="epochs without dev-loss improvement before stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build_model(hidden: list[int], dropout: float) -> fnn.Sequential:
    """Dense -> ReLU (-> Dropout) per hidden layer, then one linear output unit."""
    layers = []
    for width in hidden:
        layers += [fnn.Dense(width), fnn.Activation("relu")]
        if dropout > 0:
            layers.append(fnn.Dropout(dropout))
    layers.append(fnn.Dense(1))
    return fnn.Sequential(layers)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, y = fnn.datasets.load_diabetes()
    y = y.reshape(-1, 1)                                        # (n, 1) like the model output
    split_key, fit_key = jax.random.split(jax.random.key(args.seed))
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = train_dev_test_split(
        x, y, fractions=(0.7, 0.15, 0.15), key=split_key)
    x_scaler = fnn.preprocessing.fit_standardizer(x_train)
    y_scaler = fnn.preprocessing.fit_standardizer(y_train)
    x_train, x_dev, x_test = (np.asarray(x_scaler.transform(a)) for a in (x_train, x_dev, x_test))
    t_train, t_dev = (np.asarray(y_scaler.transform(a)) for a in (y_train, y_dev))
    print(f"diabetes: {len(x_train)} train / {len(x_dev)} dev / {len(x_test)} test, "
          f"{x.shape[1]} features; target mean {y_train.mean():.1f}, std {y_train.std():.1f}")

    model = build_model(args.hidden, args.dropout)
    result = fnn.fit(model, "mse", fnn.optim.adam(args.learning_rate), (x_train, t_train),
                     epochs=args.epochs, batch_size=args.batch_size, key=fit_key,
                     validation_data=(x_dev, t_dev),
                     early_stopping=fnn.EarlyStopping(monitor="val_loss", patience=args.patience),
                     progress=not args.no_progress)
    history = result.history
    best = int(np.argmin(history["val_loss"]))
    print(f"trained {len(history['loss'])} epochs; best standardised dev MSE "
          f"{history['val_loss'][best]:.4f} at epoch {best + 1}")

    predicted = y_scaler.inverse_transform(fnn.predict(model, result.params, result.state, x_test))
    baseline = np.full_like(y_test, y_train.mean())             # always predict the train mean
    scores = {"mse": float(fnn.losses.mse(predicted, y_test)),
              "mae": float(fnn.losses.mae(predicted, y_test)),
              "baseline_mse": float(fnn.losses.mse(baseline, y_test)),
              "baseline_mae": float(fnn.losses.mae(baseline, y_test))}
    r2 = 1.0 - scores["mse"] / float(np.mean((y_test - y_test.mean()) ** 2))
    seconds = time.perf_counter() - start
    print(f"test MSE {scores['mse']:8.1f}   MAE {scores['mae']:5.1f}   (R^2 {r2:.3f})")
    print(f"baseline {scores['baseline_mse']:8.1f}   MAE {scores['baseline_mae']:5.1f}   "
          "(predict the training mean)")
    print(f"the MLP's test MSE is {100 * (1 - scores['mse'] / scores['baseline_mse']):.0f}% "
          "lower than the baseline's")
    print(f"time: {seconds:.1f} s")
    return {**scores, "r2": r2, "epochs": len(history["loss"]), "seconds": seconds}


if __name__ == "__main__":
    main()
