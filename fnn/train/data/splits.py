"""Splitting data: train/dev/test splits and k-fold cross-validation.

The notes' recipe: build the model on the **training** set (the largest),
choose hyperparameters on the **dev** (hold-out cross-validation) set, and
report the **test** set once at the end; dev and test must come from the same
distribution. **k-fold cross-validation** divides the data into ``k`` folds
and trains ``k`` models, each validated on a different fold, so every example
is used for validation exactly once.

These functions run on the host, once, before training: they take a PRNG
``key`` (the permutation comes from `jax.random.permutation`, so the
result is a pure function of the key and the sizes) and return **numpy**
index arrays, whose sizes depend on the data. They are not meant to be traced
by ``jit``. With ``stratify=labels`` every split (or fold) keeps the class
proportions of the whole data set.

    >>> x, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> (x_tr, y_tr), (x_dev, y_dev), (x_te, y_te) = fnn.train.data.train_dev_test_split(
    ...     x, y, fractions=(0.6, 0.2, 0.2), key=jax.random.key(0), stratify=y)
    >>> x_tr.shape, x_dev.shape, x_te.shape
    ((6, 2), (2, 2), (2, 2))
    >>> np.bincount(y_dev).tolist()      # one example of each class
    [1, 1]
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from fnn.validation import check_int

__all__ = ["split_indices", "train_dev_test_split", "kfold_indices"]


def num_examples(data: Any) -> int:
    """The number of examples in ``data``: the leading-axis length of its (first) leaf.

    Args:
      data: an array or a pytree of arrays sharing a leading example axis.

    Returns:
      ``int``.

    Examples:
      >>> fnn.train.data.num_examples((np.zeros((5, 3)), np.zeros(5)))
      5
    """
    return int(jax.tree.leaves(data)[0].shape[0])


def _permutation(key: jax.Array, n: int) -> np.ndarray:
    """A random permutation of ``range(n)`` as a numpy int64 array."""
    return np.asarray(jax.random.permutation(key, n)).astype(np.int64)


def _labels(stratify: Any, n: int, where: str) -> np.ndarray | None:
    """``stratify`` as a 1-D numpy array of length ``n`` (or ``None``)."""
    if stratify is None:
        return None
    labels = np.asarray(stratify)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{where}: stratify must be a 1-D array of {n} labels (one per example), "
            f"got shape {labels.shape}")
    return labels


def _stratified_order(perm: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """``perm`` regrouped class by class (random order kept inside each class)."""
    if labels is None:
        return perm
    return perm[np.argsort(labels[perm], kind="stable")]


def _interleaved_assignment(n: int, fractions: np.ndarray) -> np.ndarray:
    """Split id for each of ``n`` positions, evenly interleaved.

    Split ``s`` takes the positions where ``round(t * g)`` steps up (a Sturmian
    sequence with rate ``g = f_s / (f_s + ... + f_last)``) among the positions the
    earlier splits left. Any window of ``m`` consecutive positions holds within
    1 (two splits) or 2 (three splits) of ``m * f_s`` members of split ``s``, so a
    class, which is a contiguous window after `_stratified_order`, is
    split in (almost) the right proportions.
    """
    k = len(fractions)
    assignment = np.full(n, k - 1, dtype=np.int64)
    remaining = np.arange(n)
    rest = 1.0
    for s in range(k - 1):
        rate = 1.0 if rest <= 0 else min(float(fractions[s]) / rest, 1.0)
        t = np.arange(len(remaining))
        take = np.floor((t + 1) * rate + 0.5) - np.floor(t * rate + 0.5) == 1
        assignment[remaining[take]] = s
        remaining = remaining[~take]
        rest -= float(fractions[s])
    return assignment


def _check_fractions(fractions: Sequence[float], where: str) -> np.ndarray:
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.ndim != 1 or fr.size < 2:
        raise ValueError(f"{where}: fractions must be a sequence of at least 2 numbers, "
                         f"got {fractions!r}")
    if np.any(~np.isfinite(fr)) or np.any(fr <= 0):
        raise ValueError(f"{where}: every fraction must be > 0, got fractions={tuple(fractions)}")
    if abs(fr.sum() - 1.0) > 1e-6:
        raise ValueError(f"{where}: fractions must sum to 1, got fractions={tuple(fractions)} "
                         f"summing to {fr.sum():.6g}")
    return fr


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), *,
                  key: jax.Array, stratify: Any = None) -> list[np.ndarray]:
    """Randomly partition ``range(n)`` into index sets of the given fractions.

    Split ``s`` gets ``round(n * f_s)`` examples (within 1 of ``n * f_s`` for up to
    three splits). With ``stratify``, each class ``c`` with ``n_c`` members puts
    about ``n_c * f_s`` of them in split ``s`` (within 1 for two splits, 2 for
    three). A class with fewer members than there are splits is missing from
    some split.

    Args:
      n: number of examples.
      fractions: one positive fraction per split, summing to 1.
      key: PRNG key; the same key gives the same split.
      stratify: optional labels, shape ``(n,)``, whose class proportions each
        split keeps.

    Returns:
      A list of ``len(fractions)`` numpy int64 index arrays, disjoint and
      together covering ``range(n)``, each in random order.

    Examples:
      >>> [len(i) for i in fnn.train.data.split_indices(10, (0.7, 0.3), key=jax.random.key(0))]
      [7, 3]
    """
    fr = _check_fractions(fractions, "split_indices")
    n = _check_n(n, "split_indices")
    labels = _labels(stratify, n, "split_indices")
    perm = _permutation(key, n)
    order = _stratified_order(perm, labels)
    assignment = _interleaved_assignment(n, fr)
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    splits = []
    for s in range(len(fr)):
        idx = order[assignment == s]
        splits.append(idx[np.argsort(rank[idx], kind="stable")])  # back to random order
    return splits


def _check_n(n: Any, where: str) -> int:
    return int(check_int(where, "n", n))


def train_dev_test_split(*arrays: Any, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                         key: jax.Array, stratify: Any = None) -> tuple:
    """Shuffle and split arrays into train / dev / test sets (same rows in each).

    Every array is indexed along its first axis with the index sets of
    `split_indices`, so row ``i`` of ``x`` stays paired with row ``i`` of
    ``y``. Two fractions give a train/test split; any number >= 2 works.

    Args:
      *arrays: one or more arrays (numpy or JAX) with the same first dimension.
      fractions: one positive fraction per split, summing to 1
        (default ``(0.8, 0.1, 0.1)``: train, dev, test).
      key: PRNG key (keyword-only); the same key gives the same split.
      stratify: optional labels of shape ``(n,)`` whose class proportions every
        split keeps (usually the classification targets ``y``).

    Returns:
      A tuple with one entry per split. With several arrays each entry is a
      tuple of the arrays' rows in that split, e.g.
      ``((x_train, y_train), (x_dev, y_dev), (x_test, y_test))``, ready for
      ``fnn.fit(..., train, validation_data=dev)``; with a single array each
      entry is just that array's rows.

    Raises:
      ValueError: no arrays, arrays of different lengths, bad ``fractions`` or
        ``stratify`` of the wrong shape.

    Examples:
      >>> x, y = np.ones((50, 3)), np.arange(50)
      >>> train, dev, test = fnn.train.data.train_dev_test_split(x, y, key=jax.random.key(1))
      >>> [len(part[1]) for part in (train, dev, test)]
      [40, 5, 5]
    """
    if not arrays:
        raise ValueError("train_dev_test_split: expected at least one array, got none")
    arrays = tuple(a if hasattr(a, "shape") else np.asarray(a) for a in arrays)
    lengths = [a.shape[0] if a.ndim else None for a in arrays]
    if None in lengths or len(set(lengths)) != 1:
        shapes = [tuple(a.shape) for a in arrays]
        raise ValueError("train_dev_test_split: arrays must share their first dimension "
                         f"(number of examples), got shapes {shapes}")
    _check_fractions(fractions, "train_dev_test_split")
    _labels(stratify, lengths[0], "train_dev_test_split")
    splits = split_indices(lengths[0], fractions, key=key, stratify=stratify)
    if len(arrays) == 1:
        return tuple(arrays[0][idx] for idx in splits)
    return tuple(tuple(a[idx] for a in arrays) for idx in splits)


def kfold_indices(n: int, k: int, *, key: jax.Array,
                  stratify: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Index pairs for k-fold cross-validation.

    The examples are shuffled with ``key`` and dealt into ``k`` folds of sizes
    ``floor(n/k)`` or ``ceil(n/k)``; model ``j`` trains on every fold but ``j``
    and is validated on fold ``j``, so each example is validated exactly once.
    With ``stratify`` the examples are dealt class by class, so every fold
    holds ``floor(n_c/k)`` or ``ceil(n_c/k)`` members of each class ``c``.
    Report the mean and standard deviation of the ``k`` validation scores.

    Args:
      n: number of examples.
      k: number of folds, ``2 <= k <= n``.
      key: PRNG key (keyword-only); the same key gives the same folds.
      stratify: optional labels of shape ``(n,)`` to keep class proportions.

    Returns:
      A list of ``k`` pairs ``(train_idx, val_idx)`` of numpy int64 arrays
      (random order); the ``val_idx`` partition ``range(n)`` and each
      ``train_idx`` is its complement.

    Raises:
      ValueError: ``k < 2``, ``k > n``, or ``stratify`` of the wrong shape.

    Examples:
      >>> folds = fnn.train.data.kfold_indices(10, 3, key=jax.random.key(0))
      >>> [(len(tr), len(va)) for tr, va in folds]
      [(6, 4), (7, 3), (7, 3)]
    """
    n = _check_n(n, "kfold_indices")
    check_int("kfold_indices", "k", k, minimum=2, maximum=n, maximum_name="the number of examples n")
    labels = _labels(stratify, n, "kfold_indices")
    perm = _permutation(key, n)
    order = _stratified_order(perm, labels)
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % k
    fold_in_perm_order = fold[perm]
    return [(perm[fold_in_perm_order != j], perm[fold_in_perm_order == j]) for j in range(int(k))]


def split_off_validation(x: Any, y: Any, fraction: Any, validation_data: Any,
                         mesh: Any = None) -> tuple[tuple, tuple]:
    """``((x_train, y_train), (x_val, y_val))``: the last ``round(n * fraction)`` examples
    held out, in their order (Keras's ``validation_split``).

    Raises:
      ValueError: ``fraction`` outside ``(0, 1)``, ``validation_data`` given too, a
        split that leaves either part empty, or a ``mesh`` (each process holds a shard).

    Examples:
      >>> (xt, yt), (xv, yv) = split_off_validation(np.arange(10), np.arange(10), 0.2, None)
      >>> xt.tolist(), xv.tolist()
      ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    if validation_data is not None:
        raise ValueError("fit: pass validation_data or validation_split, not both")
    if mesh is not None:
        raise ValueError("fit: validation_split is not supported with mesh= (each process "
                         "holds its own shard); pass validation_data")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
            0 < fraction < 1):
        raise ValueError(f"fit: validation_split must be a fraction in (0, 1), got "
                         f"{fraction!r}")
    n = num_examples(x)
    held = int(round(n * fraction))
    if not 0 < held < n:
        raise ValueError(f"fit: validation_split={fraction} of {n} examples holds out {held}; "
                         f"both parts need at least one example")
    cut = lambda tree, part: jax.tree.map(lambda a: a[:n - held] if part == 0  # noqa: E731
                                          else a[n - held:], tree)
    return (cut(x, 0), cut(y, 0)), (cut(x, 1), cut(y, 1))
