"""A character-level language model: an LSTM that learns to write like a Python module.

The text is the source of three standard-library modules, ``textwrap``,
``shlex`` and ``argparse`` (they ship with every Python, so nothing is
downloaded). The model reads 64-character
windows and predicts, at every position, the next character:

    Embedding(vocab, 32) -> LSTM(256, return_sequences=True) -> Dense(vocab)

trained with softmax cross-entropy on every position (teacher forcing), Adam
with gradient clipping, early stopping on the held-out loss (the best epoch's
weights are kept). The last 10% of the text is held out: the script
reports its loss per character in bits (log2 of the perplexity; a uniform
guess over the vocabulary costs log2(vocab) bits) and then samples a few
lines, one character at a time, from a prompt, feeding each sampled character
back in (``--temperature`` < 1 makes it more conservative).

Run:  python examples/char_lm.py                        (about 3 min on a 2-core CPU)
      python examples/char_lm.py --epochs 40 --temperature 0.5
"""

from __future__ import annotations

import argparse
import argparse as argparse_module
import inspect
import math
import shlex
import textwrap
import time

import jax
import numpy as np

import fnn


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--sample-chars", type=int, default=300)
    parser.add_argument("--prompt", default="def ")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def windows(ids: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``ids[s:s+length]`` and targets shifted by one, every ``stride`` characters."""
    starts = np.arange(0, len(ids) - length - 1, stride)
    x = np.stack([ids[s:s + length] for s in starts])
    return x, np.stack([ids[s + 1:s + length + 1] for s in starts])


def sample(model, params, prompt_ids, n: int, window: int, temperature: float, key):
    """Extend ``prompt_ids`` by ``n`` characters, each drawn from the model's next-character
    distribution over the last ``window`` characters (a fixed-size input: one compile)."""
    @jax.jit
    def next_id(context, key):
        logits, _ = model.apply(params, {}, context[None])
        return jax.random.categorical(key, logits[0, -1] / temperature)

    ids = list(prompt_ids)
    for i in range(n):
        context = np.zeros(window, np.int32)                # left-padded with id 0 (a space)
        recent = ids[-window:]
        context[window - len(recent):] = recent
        ids.append(int(next_id(context, jax.random.fold_in(key, i))))
    return ids


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    text = "\n".join(inspect.getsource(m) for m in (textwrap, shlex, argparse_module))
    chars = sorted(set(text) | {" "})
    chars.remove(" ")
    chars = [" "] + chars                                    # id 0 is the space
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], np.int32)
    cut = int(0.9 * len(ids))
    x, y = windows(ids[:cut], args.window, args.stride)
    xv, yv = windows(ids[cut:], args.window, args.window)
    print(f"text: the source of textwrap, shlex and argparse, {len(text):,} characters, "
          f"{len(chars)} distinct; "
          f"{len(x)} training windows of {args.window}, {len(xv)} held-out windows")
    model = fnn.Sequential([fnn.Embedding(len(chars), 32),
                            fnn.LSTM(args.hidden, return_sequences=True),
                            fnn.Dense(len(chars))])
    optimizer = fnn.optim.chain(fnn.optim.clip_by_global_norm(1.0),
                                fnn.optim.adam(args.learning_rate))
    key = jax.random.key(args.seed)
    result = fnn.fit(model, "sparse_softmax_cross_entropy", optimizer, (x, y),
                     validation_data=(xv, yv), epochs=args.epochs, batch_size=args.batch_size,
                     key=key, progress=not args.no_progress,
                     early_stopping=fnn.EarlyStopping(monitor="val_loss", patience=3,
                                                     restore_best=True))
    held_out = min(result.history["val_loss"]) / math.log(2)
    print(f"held-out loss: {held_out:.2f} bits per character (uniform guess: "
          f"{math.log2(len(chars)):.2f}; training {result.history['loss'][-1] / math.log(2):.2f})")
    prompt = [index[c] for c in args.prompt if c in index]
    out = sample(model, result.params, prompt, args.sample_chars, args.window,
                 args.temperature, jax.random.fold_in(key, 1))
    print(f"sample (temperature {args.temperature}, prompt {args.prompt!r}):")
    print(textwrap.indent("".join(chars[i] for i in out), "    "))
    seconds = time.perf_counter() - start
    print(f"time: {seconds:.1f} s")
    return {"val_bits_per_char": held_out, "history": result.history, "seconds": seconds}


if __name__ == "__main__":
    main()
