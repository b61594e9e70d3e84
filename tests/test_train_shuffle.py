"""fnn.train.shuffle: a sort-free keyed bijection of range(n) (cycle-walking Feistel network).

Correctness (bijection, jit/vmap/eager agreement, no sort in the program) and
statistical quality against the uniform distribution over permutations, with
hand-written chi-square tests at significance 1e-4 (critical values from the
Wilson-Hilferty approximation). Every key is fixed, so the tests are
deterministic; the strict level only makes sure that they test quality, not
luck. The batched permutations are computed by one jitted ``vmap`` over keys
per size, shared by the tests.
"""

from __future__ import annotations

import functools
import math
import statistics
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.train.shuffle import index_shuffle, shuffled_indices

ALPHA = 1e-4
SIZES = (1, 2, 3, 5, 7, 8, 9, 31, 32, 33, 100, 1000, 1023, 1024, 1025, 32000)

# Each jitted program below is compiled once and shared by the tests (a
# compilation costs ~0.4 s on a small CPU; one program holding several sizes
# compiles faster than one per size).


@functools.lru_cache(maxsize=None)
def all_sizes() -> Callable:
    """``key -> [shuffled_indices(key, n) for n in SIZES]``, one program."""
    return jax.jit(lambda key: [shuffled_indices(key, n) for n in SIZES])


def keys(count: int, seed: int = 0) -> jax.Array:
    return jax.random.split(jax.random.key(seed), count)


SMALL_N, SMALL_KEYS = 10, 10_000           # positions table and pairs
LARGE_NS, LARGE_KEYS = (1000, 1025), 400   # per-element positions, correlations, successions


@functools.lru_cache(maxsize=None)
def samples() -> dict[int, np.ndarray]:
    """``{n: (keys, n) permutations}`` for the statistical tests, from one vmapped program."""
    def f(small_keys, large_keys):
        out = {SMALL_N: jax.vmap(lambda k: shuffled_indices(k, SMALL_N))(small_keys)}
        for n in LARGE_NS:
            out[n] = jax.vmap(lambda k, n=n: shuffled_indices(k, n))(large_keys)
        return out
    out = jax.jit(f)(keys(SMALL_KEYS, seed=11), keys(LARGE_KEYS, seed=12))
    return {n: np.asarray(p) for n, p in out.items()}


def chi2_critical(dof: int, alpha: float = ALPHA) -> float:
    """Upper ``alpha`` quantile of chi-square(``dof``), by Wilson-Hilferty."""
    z = statistics.NormalDist().inv_cdf(1.0 - alpha)
    c = 2.0 / (9.0 * dof)
    return dof * (1.0 - c + z * math.sqrt(c)) ** 3


def chi2_uniform(counts: np.ndarray) -> float:
    """Pearson's statistic of ``counts`` against equal expected counts."""
    counts = np.asarray(counts, np.float64)
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2).sum() / expected)


def test_chi2_critical_matches_exact_quantiles():
    # scipy.stats.chi2.isf(1e-4, dof), computed once offline
    exact = {9: 33.7199, 81: 137.0747, 89: 147.3501, 400: 513.8358}
    for dof, value in exact.items():
        assert chi2_critical(dof) == pytest.approx(value, rel=0.015)


# ------------------------------------------------------------------ correctness


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_every_index_exactly_once(seed):
    for n, p in zip(SIZES, all_sizes()(jax.random.key(seed))):
        p = np.asarray(p)
        assert p.dtype == np.int32 and p.shape == (n,), n
        np.testing.assert_array_equal(np.sort(p), np.arange(n), err_msg=f"n={n}")


def test_large_batches_are_bijections():
    for n, p in samples().items():
        np.testing.assert_array_equal(np.sort(p, axis=1), np.broadcast_to(np.arange(n), p.shape))


def test_n_one_gives_zeros():
    assert shuffled_indices(jax.random.key(0), 1).tolist() == [0]
    out = index_shuffle(jax.random.key(0), jnp.zeros((2, 3), jnp.int32), 1)
    assert out.dtype == jnp.int32 and out.tolist() == [[0, 0, 0], [0, 0, 0]]


def test_eager_jit_and_vmap_over_keys_agree():
    n = LARGE_NS[1]
    batch = samples()[n]                                     # jit(vmap) over keys
    ks = keys(LARGE_KEYS, seed=12)
    jitted = jax.jit(shuffled_indices, static_argnums=1)
    for i in (0, 1, LARGE_KEYS - 1):
        eager = np.asarray(shuffled_indices(ks[i], n))
        np.testing.assert_array_equal(eager, batch[i])
        np.testing.assert_array_equal(np.asarray(jitted(ks[i], n)), eager)
    sizes = all_sizes()(ks[0])                               # another program, same values
    np.testing.assert_array_equal(np.asarray(sizes[SIZES.index(n)]), batch[0])


def test_index_of_any_shape_and_out_of_range_indices():
    n = LARGE_NS[1]
    key = keys(LARGE_KEYS, seed=12)[0]
    perm = samples()[n][0]
    index = np.array([[0, 1024, 5], [512, 3, 1000]], np.int32)
    wrapped = np.array([n, n + 5, -1, -n], np.int32)        # taken modulo n

    @jax.jit
    def f(key):
        return (index_shuffle(key, index, n), index_shuffle(key, 7, n), index_shuffle(key, wrapped, n),
                jax.vmap(lambda i: index_shuffle(key, i, n))(jnp.arange(n)))

    grid, scalar, modulo, by_index = f(key)
    assert grid.shape == (2, 3) and grid.dtype == jnp.int32 and scalar.shape == ()
    np.testing.assert_array_equal(np.asarray(grid), perm[index])
    assert int(scalar) == perm[7]
    np.testing.assert_array_equal(np.asarray(modulo), perm[[0, 5, n - 1, 0]])
    np.testing.assert_array_equal(np.asarray(by_index), perm)   # vmap over the index


def test_deterministic_and_keys_give_different_permutations():
    for n in LARGE_NS:
        p = samples()[n]
        assert len({row.tobytes() for row in p}) == LARGE_KEYS
    first = all_sizes()(jax.random.key(0))
    again = all_sizes()(jax.random.key(0))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_legacy_uint32_keys_work():
    p = np.asarray(shuffled_indices(jax.random.PRNGKey(0), 33))
    np.testing.assert_array_equal(np.sort(p), np.arange(33))


def test_rounds_change_the_permutation_and_stay_bijections():
    rounds = (1, 2, 3, 4, 8)
    outs = jax.jit(lambda key: [shuffled_indices(key, 1000, rounds=r) for r in rounds])(jax.random.key(0))
    outs = [np.asarray(p) for p in outs]
    assert all((np.sort(p) == np.arange(1000)).all() for p in outs)
    assert len({p.tobytes() for p in outs}) == len(rounds)
    np.testing.assert_array_equal(outs[-1], np.asarray(all_sizes()(jax.random.key(0))[SIZES.index(1000)]))


def test_largest_n():
    n = 2**31 - 1
    index = jnp.array([0, 1, 2, n - 2, n - 1], jnp.int32)
    out = np.asarray(index_shuffle(jax.random.key(0), index, n))
    assert out.dtype == np.int32 and ((out >= 0) & (out < n)).all() and len(set(out.tolist())) == 5


@pytest.mark.parametrize("bad, error", [
    (dict(n=0), ValueError), (dict(n=2**31), ValueError), (dict(n=-3), ValueError),
    (dict(n=10.0), TypeError), (dict(n=10, rounds=0), ValueError), (dict(n=10, rounds=2.0), TypeError),
])
def test_invalid_arguments(bad, error):
    with pytest.raises(error):
        index_shuffle(jax.random.key(0), jnp.arange(3), **bad)


def test_float_index_is_rejected():
    with pytest.raises(TypeError, match="integer"):
        index_shuffle(jax.random.key(0), jnp.arange(3.0), 10)


def test_traced_n_is_rejected():
    with pytest.raises(TypeError, match="static"):
        jax.jit(shuffled_indices)(jax.random.key(0), 10)


def test_no_sort_in_the_program():
    key = jax.random.key(0)
    jaxpr = str(jax.make_jaxpr(shuffled_indices, static_argnums=1)(key, 32000))
    hlo = jax.jit(shuffled_indices, static_argnums=1).lower(key, 32000).as_text()
    assert "sort" not in jaxpr and "sort" not in hlo.lower()
    assert "while" in jaxpr                                               # the cycle-walk
    # the check can see a sort: jax.random.permutation's program has one
    assert "sort" in str(jax.make_jaxpr(jax.random.permutation, static_argnums=1)(key, 32000))


def test_no_walk_for_powers_of_two():
    assert "while" not in str(jax.make_jaxpr(shuffled_indices, static_argnums=1)(jax.random.key(0), 1024))


# ---------------------------------------------------------- statistical quality


def position_table(p: np.ndarray) -> np.ndarray:
    """``table[i, j]``: how many permutations hold element ``i`` at position ``j``."""
    count, n = p.shape
    table = np.zeros((n, n), np.int64)
    np.add.at(table, (p.ravel(), np.tile(np.arange(n), count)), 1)
    return table


def test_small_n_position_table_is_uniform():
    # n = 10 (4 bits, cycle-walking from 16): 10,000 keys. Each permutation adds
    # one count to every row and column, so Pearson's statistic is n/(n-1)
    # times a chi-square with (n-1)**2 = 81 degrees of freedom.
    n, count = SMALL_N, SMALL_KEYS
    table = position_table(samples()[n])
    assert (table.sum(axis=0) == count).all() and (table.sum(axis=1) == count).all()
    stat = chi2_uniform(table) * (n - 1) / n
    assert stat < chi2_critical((n - 1) ** 2), stat


@pytest.mark.parametrize("positions", [(0, 1), (4, 5), (0, 9)])
def test_small_n_pairs_of_positions_are_uniform(positions):
    # (perm[j], perm[j']) is uniform over the 90 ordered pairs of distinct elements.
    n = SMALL_N
    p = samples()[n]
    j, j2 = positions
    pairs = p[:, j] * n + p[:, j2]
    counts = np.bincount(pairs, minlength=n * n).reshape(n, n)
    assert np.trace(counts) == 0
    off_diagonal = counts[~np.eye(n, dtype=bool)]
    assert chi2_uniform(off_diagonal) < chi2_critical(n * (n - 1) - 1)


@pytest.mark.parametrize("n", LARGE_NS)
def test_position_of_an_element_is_uniform(n):
    # Over 400 keys, where element e lands (and which element lands at position
    # j), in 10 equal bins: multinomial(400, 1/10 each), chi-square with 9 dof.
    p = samples()[n]
    where = np.argsort(p, axis=1)                      # where[k, e]: position of element e
    bins = lambda v: np.bincount(v * 10 // n, minlength=10)
    for e in (0, 1, n // 2, n - 1):
        assert chi2_uniform(bins(where[:, e])) < chi2_critical(9), ("element", e)
        assert chi2_uniform(bins(p[:, e])) < chi2_critical(9), ("position", e)


def correlation(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation (Spearman's rho for permutations, which are their own ranks)."""
    u = u - u.mean(axis=1, keepdims=True)
    v = v - v.mean(axis=1, keepdims=True)
    return (u * v).sum(axis=1) / np.sqrt((u * u).sum(axis=1) * (v * v).sum(axis=1))


@pytest.mark.parametrize("n", LARGE_NS)
def test_no_correlation_between_positions(n):
    # For a uniform permutation, Spearman's rho between position and element, and
    # between neighbouring entries (perm[j], perm[j+1]), has mean 0 and variance
    # ~1/(n-1): (n-1) * sum over keys of rho**2 is ~chi-square(keys).
    p = samples()[n].astype(np.float64)
    count = p.shape[0]
    position = np.broadcast_to(np.arange(n, dtype=np.float64), p.shape)
    for rho in (correlation(position, p), correlation(p[:, :-1], p[:, 1:])):
        assert abs(rho.mean()) < 4.5 / math.sqrt((n - 1) * count)
        assert (n - 1) * (rho**2).sum() < chi2_critical(count)
        assert np.abs(rho).mean() < 0.03                                   # ~0.025 expected


@pytest.mark.parametrize("n", LARGE_NS)
def test_successions_are_as_rare_as_in_a_uniform_shuffle(n):
    # perm[j+1] == perm[j] + s happens (n-|s|)/n times per permutation on average
    # (for s = 1 a fraction ~1/n of the j), ~Poisson over keys.
    p = samples()[n].astype(np.int64)
    count = p.shape[0]
    for step in (1, -1, 2):
        expected = count * (n - abs(step)) / n
        total = int((np.diff(p, axis=1) == step).sum())
        assert abs(total - expected) < 4.5 * math.sqrt(expected), (step, total, expected)
