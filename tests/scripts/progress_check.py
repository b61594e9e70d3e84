"""Trains a small digits MLP with validation, accuracy and early stopping, with verbose=argv[1]
(the test runs it under an 80-column pseudo-terminal and reads what it wrote)."""

import sys

import jax

import fnn


def main() -> None:
    x, y = fnn.datasets.load_digits()
    model = fnn.Sequential([fnn.Dense(32), fnn.Activation("relu"), fnn.Dense(10)])
    fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.01), (x[:1500], y[:1500]),
            epochs=30, batch_size=64, key=jax.random.key(0), metrics=["accuracy"],
            validation_data=(x[1500:], y[1500:]), verbose=int(sys.argv[1]),
            early_stopping=fnn.EarlyStopping("val_loss", patience=2))


if __name__ == "__main__":
    main()
