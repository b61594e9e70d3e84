"""An encoder-decoder transformer that learns to reverse strings of digits, decoding greedily.

Source: 3 to 8 digits, padded (the padding is masked out of the encoder's
attention and the decoder's cross-attention). Target: the digits reversed,
then an end token. The decoder is trained with teacher forcing (it reads the
target shifted right behind a start token, its self-attention causal) and at
test time writes the answer one token at a time, feeding back its own
argmax (greedy decoding). Reported: exact-match accuracy (every token right,
up to the end token) on held-out strings that never occur in training.

Model: ``fnn.EncoderDecoder`` with token embeddings and sinusoidal positions,
2 encoder and 2 decoder blocks (width 64, 4 heads of 16, MLP 128, pre-norm),
a Dense head over the 13 tokens; Adam with warm-up and cosine decay.

Run:  python examples/reverse_transformer.py            (about 1-2 min on a 2-core CPU)
      python examples/reverse_transformer.py --epochs 5 --seed 1
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn

PAD, START, END, FIRST_DIGIT = 0, 1, 2, 3          # digits d are tokens 3 + d
VOCAB = FIRST_DIGIT + 10


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-examples", type=int, default=12000)
    parser.add_argument("--test-examples", type=int, default=1000)
    parser.add_argument("--min-length", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=8)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def make_strings(n: int, lo: int, hi: int, rng: np.random.Generator, exclude=frozenset()):
    """``n`` distinct digit strings of length ``lo..hi``, none of them in ``exclude``."""
    found: dict[str, None] = {}
    while len(found) < n:
        length = int(rng.integers(lo, hi + 1))
        s = "".join(map(str, rng.integers(0, 10, size=length)))
        if s not in exclude:
            found[s] = None
    return list(found)


def encode(strings: list[str], max_length: int):
    """Source ids and mask ``(n, max_length)``; target ``(n, max_length + 1)`` and its input."""
    n = len(strings)
    source = np.full((n, max_length), PAD, np.int32)
    target = np.full((n, max_length + 1), PAD, np.int32)
    for row, s in enumerate(strings):
        digits = [FIRST_DIGIT + int(ch) for ch in s]
        source[row, :len(s)] = digits
        target[row, :len(s) + 1] = digits[::-1] + [END]
    target_in = np.concatenate([np.full((n, 1), START, np.int32), target[:, :-1]], axis=1)
    return source, source != PAD, target, target_in


def build_model(width: int, heads: int, blocks: int) -> fnn.EncoderDecoder:
    key_size, mlp = width // heads, 2 * width

    def embed():
        return fnn.Sequential([fnn.Embedding(VOCAB, width, e_init=fnn.initializers.normal(
            width ** -0.5)), fnn.SinusoidalPositionalEncoding(scale=width ** 0.5)])

    return fnn.EncoderDecoder(
        encoder=fnn.Sequential([embed()] + [fnn.TransformerEncoderBlock(heads, key_size, mlp)
                                            for _ in range(blocks)]),
        decoder=fnn.Sequential([fnn.TransformerDecoderBlock(heads, key_size, mlp)
                                for _ in range(blocks)]),
        target_embedding=embed(),
        head=fnn.Sequential([fnn.LayerNorm(), fnn.Dense(VOCAB)]))


def greedy_decode(model, params, source, mask, steps: int) -> jax.Array:
    """Write the target one token at a time, each step reading the tokens written so far."""
    def step(t, target_in):
        logits, _ = model.apply(params, {}, ((source, mask), target_in))
        token = jnp.argmax(logits[:, t], axis=-1).astype(jnp.int32)
        return target_in.at[:, t + 1].set(token)

    target_in = jnp.full((source.shape[0], steps), PAD, jnp.int32).at[:, 0].set(START)
    target_in = jax.lax.fori_loop(0, steps - 1, step, target_in)
    logits, _ = model.apply(params, {}, ((source, mask), target_in))
    return jnp.concatenate([target_in[:, 1:], jnp.argmax(logits[:, -1:], -1)], axis=1)


def exact_matches(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row: every token equal up to and including the first END of the target."""
    length = np.argmax(target == END, axis=1) + 1
    upto = np.arange(target.shape[1])[None, :] < length[:, None]
    return np.all((predicted == target) | ~upto, axis=1)


def show(ids) -> str:
    return "".join(str(int(t) - FIRST_DIGIT) for t in ids if t >= FIRST_DIGIT)


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train_strings = make_strings(args.train_examples, args.min_length, args.max_length, rng)
    test_strings = make_strings(args.test_examples, args.min_length, args.max_length, rng,
                                exclude=frozenset(train_strings))
    source, mask, target, target_in = encode(train_strings, args.max_length)
    t_source, t_mask, t_target, _ = encode(test_strings, args.max_length)
    print(f"reverse digit strings of {args.min_length}-{args.max_length} digits: "
          f"{len(train_strings)} training strings, {len(test_strings)} held-out test strings "
          f"(none seen in training)")
    model = build_model(args.width, args.heads, args.blocks)
    steps = args.epochs * (len(source) // args.batch_size)
    schedule = fnn.optim.schedules.warmup_cosine_decay(
        0.0, args.learning_rate, warmup_steps=min(300, steps // 5), decay_steps=steps)
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(schedule),
                     (((source, mask), target_in), target), metrics=["accuracy"],
                     epochs=args.epochs, batch_size=args.batch_size,
                     key=jax.random.key(args.seed), drop_remainder=True,
                     progress=not args.no_progress)
    rows = fnn.summary_rows(model, ((source[:1], mask[:1]), target_in[:1]))
    print(f"{sum(r.params for r in rows):,} parameters; last epoch: loss "
          f"{result.history['loss'][-1]:.4f}, token accuracy (teacher forcing) "
          f"{result.history['accuracy'][-1]:.4f}")
    decode = jax.jit(lambda p, s, m: greedy_decode(model, p, s, m, args.max_length + 1))
    predicted = np.asarray(decode(result.params, t_source, t_mask))
    correct = exact_matches(predicted, t_target)
    print(f"held-out exact match (greedy decoding): {correct.mean():.4f} "
          f"({correct.sum()} of {len(correct)})")
    for s, p in list(zip(test_strings, predicted))[:5]:
        print(f"  {s:>{args.max_length}} -> {show(p[:np.argmax(p == END)] if END in p else p)}")
    seconds = time.perf_counter() - start
    print(f"time: {seconds:.1f} s")
    return {"exact_match": float(correct.mean()), "history": result.history,
            "seconds": seconds}


if __name__ == "__main__":
    main()
