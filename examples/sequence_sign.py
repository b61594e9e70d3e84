"""A recurrent network that needs memory: the sign of the sum of a variable-length sequence.

Each example is a sequence of 4 to 20 numbers drawn from N(0, 1), padded with
noise to 20 steps; the label is whether its real part sums to more than 0.
No single step tells the answer: the network has to carry a running total
through time, and to ignore the padding, which the mask hides from it (a
padded step keeps the state, so the last state is each sequence's own).

Model: ``fnn.GRU`` (or ``--cell lstm`` / ``rnn``) of 32 units over
``(x, mask)`` pairs, its last state into Dense(2); Adam; early stopping on a
validation split. The script also reports the accuracy on the same test
sequences when the mask is withheld (the padding noise then enters the sum),
to show what the mask does.

Run:  python examples/sequence_sign.py                  (about 30 s on a 2-core CPU)
      python examples/sequence_sign.py --cell lstm --seed 1
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import fnn

CELLS = {"gru": fnn.GRU, "lstm": fnn.LSTM, "rnn": fnn.SimpleRNN}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=sorted(CELLS), default="gru")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--examples", type=int, default=6000)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def make_data(n: int, max_length: int, seed: int):
    """Sequences ``(n, max_length, 1)``, masks ``(n, max_length)`` and 0/1 labels."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, max_length + 1, size=n)
    mask = np.arange(max_length)[None, :] < lengths[:, None]
    x = rng.normal(size=(n, max_length, 1)).astype(np.float32)
    labels = ((x[..., 0] * mask).sum(axis=1) > 0).astype(np.int32)
    x[~mask, 0] = rng.normal(scale=3.0, size=(~mask).sum())     # loud padding
    return x, mask, labels


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    x, mask, y = make_data(args.examples, args.max_length, args.seed)
    split_key, fit_key = jax.random.split(jax.random.key(args.seed))
    train, dev, test = (np.asarray(i) for i in fnn.train.split_indices(
        len(x), (0.7, 0.15, 0.15), key=split_key, stratify=y))
    print(f"{len(x)} sequences of 4-{args.max_length} steps ({len(train)} train / {len(dev)} "
          f"dev / {len(test)} test); label = sign of the sum of the real steps "
          f"({y.mean():.1%} positive)")
    model = fnn.Sequential([CELLS[args.cell](args.hidden), fnn.Dense(2)])

    def part(idx):
        return (x[idx], mask[idx]), y[idx]

    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(args.learning_rate),
                     part(train), validation_data=part(dev), metrics=["accuracy"],
                     epochs=args.epochs, batch_size=args.batch_size, key=fit_key,
                     early_stopping=fnn.EarlyStopping(monitor="val_loss", patience=8),
                     progress=not args.no_progress)
    print(fnn.summary(model, (x[:1], mask[:1]), params=result.params))
    scores = fnn.evaluate(model, result.params, result.state, part(test),
                          loss="sparse_softmax_cross_entropy", metrics=["accuracy"])
    unmasked = fnn.evaluate(model, result.params, result.state,
                            ((x[test], np.ones_like(mask[test])), y[test]),
                            loss="sparse_softmax_cross_entropy", metrics=["accuracy"])
    print(f"{args.cell.upper()}({args.hidden}), {len(result.history['loss'])} epochs: test "
          f"accuracy {scores['accuracy']:.4f} (loss {scores['loss']:.4f}); without the mask "
          f"on the same sequences: {unmasked['accuracy']:.4f}")
    seconds = time.perf_counter() - start
    print(f"time: {seconds:.1f} s")
    return {**scores, "unmasked_accuracy": unmasked["accuracy"], "seconds": seconds,
            "epochs": len(result.history["loss"])}


if __name__ == "__main__":
    main()
