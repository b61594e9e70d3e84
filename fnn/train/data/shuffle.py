"""Shuffling without sorting: a keyed bijection of ``range(n)`` in O(n) work.

`jax.random.permutation` draws random numbers and **sorts** them, which
costs O(n log n) and, on a CPU, a large part of a small model's epoch.
`index_shuffle` instead computes the permuted index of each position
directly, with a few integer operations per element and no sort (the
"index shuffle" of TensorFlow's ``tf.random.experimental.index_shuffle`` and
of Google's Grain). The construction:

- **bits**: ``k = max(2, ceil(log2(n)))``, the fewest bits with ``2**k >= n``
  (at least 2, so that ``k`` splits into two non-empty halves);
- **Feistel network**: a ``k``-bit integer ``x`` is split into a high half
  ``L`` of ``a = k // 2`` bits and a low half ``R`` of ``b = k - a`` bits
  (balanced for even ``k``, off by one bit for odd ``k``). Even rounds do
  ``L ^= F(R ^ K_r) mod 2**a``, odd rounds ``R ^= F(L ^ K_r) mod 2**b``; each
  round is undone by repeating it, so the network is a bijection of
  ``[0, 2**k)`` whatever ``F`` is;
- **round function** ``F``: the "lowbias32" 32-bit integer hash (xor-shift,
  multiply, xor-shift, multiply, xor-shift; full avalanche), with round keys
  ``K_0 ... K_{rounds-1} = jax.random.bits(key, (rounds,), jnp.uint32)``;
  ``rounds=8`` by default;
- **cycle-walking**: a value ``>= n`` is sent through the network again until
  it falls in ``[0, n)``. Following a cycle of a bijection of ``[0, 2**k)``
  from a point of ``[0, n)`` leads back into ``[0, n)``, and the result is a
  bijection of ``[0, n)``. Averaged over the ``n`` starting points, the number
  of passes is at most ``2**k / n < 2`` (exactly 1 when ``n`` is a power of
  two, where no walking is done). The whole vector walks in one
  ``lax.while_loop`` until every element is in range, about ``log2(n)`` extra
  passes in the worst case ``n = 2**(k-1) + 1``, only a few for ``n`` just
  under a power of two.

Like any keyed construction it reaches only a tiny fraction of the ``n!``
permutations (at most ``2**(32 * rounds)`` keys); its statistics (where each
element lands, correlations between positions) are those of a uniform
shuffle, see ``tests/test_train_shuffle.py``.

    >>> key = jax.random.key(0)
    >>> perm = fnn.train.data.shuffle.shuffled_indices(key, 10)
    >>> sorted(perm.tolist()) == list(range(10))
    True
    >>> fnn.train.data.shuffle.index_shuffle(key, jnp.array([[0, 1], [2, 3]]), 10).tolist() == (
    ...     perm[:4].reshape(2, 2).tolist())
    True
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["index_shuffle", "shuffled_indices"]

DEFAULT_ROUNDS = 8
"""Feistel rounds of `index_shuffle` unless told otherwise."""

_MAX_N = 2**31 - 1  # the indices are int32


def _mix32(x: jax.Array) -> jax.Array:
    """The "lowbias32" integer hash of uint32 ``x`` (C. Wellons' hash-prospector)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _feistel(x: jax.Array, round_keys: jax.Array, a: int, b: int) -> jax.Array:
    """One pass of the ``(a + b)``-bit Feistel network over uint32 ``x`` (a bijection of ``[0, 2**(a+b))``)."""
    mask_a, mask_b = jnp.uint32(2**a - 1), jnp.uint32(2**b - 1)
    left, right = x >> b, x & mask_b
    for r in range(round_keys.shape[0]):
        if r % 2 == 0:
            left = left ^ (_mix32(right ^ round_keys[r]) & mask_a)
        else:
            right = right ^ (_mix32(left ^ round_keys[r]) & mask_b)
    return (left << b) | right


def _check_size(n: Any, rounds: Any) -> tuple[int, int]:
    try:
        n, rounds = operator.index(n), operator.index(rounds)
    except TypeError:
        raise TypeError(f"index_shuffle: n and rounds must be Python ints (static), "
                        f"got n={n!r}, rounds={rounds!r}") from None
    if not 1 <= n <= _MAX_N:
        raise ValueError(f"index_shuffle: n must be in [1, 2**31 - 1], got {n}")
    if rounds < 1:
        raise ValueError(f"index_shuffle: rounds must be >= 1, got {rounds}")
    return n, rounds


def index_shuffle(key: jax.Array, index: Any, n: int, *, rounds: int = DEFAULT_ROUNDS) -> jax.Array:
    """The entries at positions ``index`` of the keyed permutation of ``range(n)``.

    For a fixed ``key``, ``i -> index_shuffle(key, i, n)`` is a bijection of
    ``[0, n)`` (construction in the module docstring): the work is O(1) per
    element, so any subset of positions can be computed without the rest.
    Pure, works under ``jit`` and ``vmap`` (over keys or indices), and gives
    the same values eagerly and jitted.

    Args:
      key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``); the
        round keys are ``jax.random.bits(key, (rounds,), jnp.uint32)``.
      index: integer array of any shape, the positions, in ``[0, n)``; other
        values are first taken modulo ``n``.
      n: the size of the permuted range, a Python int in ``[1, 2**31 - 1]``.
      rounds: the number of Feistel rounds (``>= 1``; fewer than the default
        8 weakens the statistical quality).

    Returns:
      int32 array of ``index``'s shape with values in ``[0, n)``; distinct
      positions give distinct values. ``n == 1`` gives zeros.

    Examples:
      >>> key = jax.random.key(42)
      >>> values = fnn.train.data.shuffle.index_shuffle(key, jnp.arange(1000), 1000)
      >>> int(values.min()), int(values.max()), len(set(values.tolist()))
      (0, 999, 1000)
      >>> fnn.train.data.shuffle.index_shuffle(key, 1003, 1000) == values[3]
      Array(True, dtype=bool)
    """
    n, rounds = _check_size(n, rounds)
    index = jnp.asarray(index)
    if not jnp.issubdtype(index.dtype, jnp.integer):
        raise TypeError(f"index_shuffle: index must be an integer array, got dtype {index.dtype}")
    return _index_shuffle(key, index.astype(jnp.int32), n, rounds)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _index_shuffle(key: jax.Array, index: jax.Array, n: int, rounds: int) -> jax.Array:
    """`index_shuffle` on int32 ``index``, compiled once per ``(shapes, n, rounds)``."""
    index = jnp.remainder(index, jnp.int32(n))
    if n == 1:
        return index  # all zeros
    k = max(2, (n - 1).bit_length())
    a, b = k // 2, k - k // 2
    round_keys = jax.random.bits(key, (rounds,), jnp.uint32)

    def walk(x):
        return _feistel(x, round_keys, a, b)

    x = walk(index.astype(jnp.uint32))
    if n < 2**k:
        bound = jnp.uint32(n)
        x = lax.while_loop(lambda x: jnp.any(x >= bound),
                           lambda x: jnp.where(x >= bound, walk(x), x), x)
    return x.astype(jnp.int32)


def shuffled_indices(key: jax.Array, n: int, *, rounds: int = DEFAULT_ROUNDS) -> jax.Array:
    """A keyed random permutation of ``range(n)``, computed without a sort.

    ``index_shuffle(key, jnp.arange(n), n)``: the drop-in for
    ``jax.random.permutation(key, n)`` as an epoch's order (``x[perm]``), in
    O(n) work. It is a **different** permutation from the one
    ``jax.random.permutation`` gives for the same key, so a hand-written
    training loop reproduces the order of a ``fit`` that shuffles with this
    function only by calling this function (with the same key) too.

    Args:
      key: a PRNG key.
      n: the number of elements, a Python int in ``[1, 2**31 - 1]``.
      rounds: Feistel rounds, as in `index_shuffle`.

    Returns:
      int32 array of shape ``(n,)`` holding every value of ``range(n)`` once.

    Examples:
      >>> perm = jax.jit(fnn.train.data.shuffle.shuffled_indices, static_argnums=1)(jax.random.key(1), 8)
      >>> perm.dtype, sorted(perm.tolist())
      (dtype('int32'), [0, 1, 2, 3, 4, 5, 6, 7])
    """
    n, rounds = _check_size(n, rounds)
    return index_shuffle(key, jnp.arange(n, dtype=jnp.int32), n, rounds=rounds)
