"""``fnn.cross_validate``: the notes' k-fold cross-validation, the folds trained together.

    fold_key, fit_key = jax.random.split(key)
    folds = fnn.train.kfold_indices(n, k, key=fold_key, stratify=y if stratified else None)
    fold j = fnn.fit(model, ..., (x[train_j], y[train_j]), key=fit_key,
                     validation_data=(x[val_j], y[val_j]))

Every fold is exactly that ``fit`` (same initialisation for all folds, since
they share ``fit_key``; only the data differs). The folds run under
`jax.vmap` with their training sets stacked, one compiled program per
distinct training-set size: when ``k`` divides ``n`` that is one program; else
the folds have ``floor(n/k)`` or ``ceil(n/k)`` validation examples and two
programs cover them (stratified folds can have a few more sizes). Grouping by
size keeps every fold exact: its shuffle, its number of steps and its last
partial batch are those of a ``fit`` on its own split.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn.train.step import checks
from fnn.train.data.splits import kfold_indices
from fnn.train.loop.early_stopping import EarlyStopping
from fnn.train.many.ensemble import member_init, prepare
from fnn.train.many.members import parallel_groups, train_members
from fnn.train.loop.progress import EpochBar, wants_bar
from fnn.train.many.table import Table, final_row
from fnn.validation import check_int


class CrossValidationResult(NamedTuple):
    """What `cross_validate` returns.

    Attributes:
      params, state, opt_state: stacked, fold ``j`` on the leading axis.
      history: one ``fit``-style history per fold (``val_*`` on the held-out fold).
      folds: the ``(train_idx, val_idx)`` pairs, fold ``j`` at position ``j``.
      scores: ``{name: [one value per fold]}``, the held-out numbers of each fold's
        last epoch (its best with early stopping and ``restore_best``), e.g.
        ``"val_loss"``, ``"val_accuracy"``.
      mean, std: ``{name: mean}`` and ``{name: standard deviation}`` over the folds
        (``ddof=0``).
      table: one row per fold, then the mean and std rows.
    """

    params: Any
    state: Any
    opt_state: Any
    history: list
    folds: list
    scores: dict
    mean: dict
    std: dict
    table: Table


def _take(tree: Any, idx: np.ndarray) -> Any:
    return jax.tree.map(lambda a: np.asarray(a)[idx], tree)


def cross_validate(model: Any, loss: Any, optimizer: Any, data: Any, *, k: int, key: jax.Array,
                   epochs: int, batch_size: int | None, stratified: bool = False,
                   metrics: Sequence[Any] = (), loss_weights: Any = None,
                   early_stopping: EarlyStopping | None = None, progress: bool = True,
                   drop_remainder: bool = False, shuffle: bool = True,
                   validation_batch_size: int | None = None) -> CrossValidationResult:
    """k-fold cross-validation of ``model``, the folds trained together (see the module doc).

    ``model``, ``loss``, ``optimizer``, ``epochs``, ``batch_size``, ``metrics``,
    ``loss_weights``, ``early_stopping``, ``drop_remainder``, ``shuffle`` and
    ``validation_batch_size`` are as for `fnn.fit`; each fold's held-out part is its
    ``validation_data`` (monitor ``"val_..."``).

    Args:
      data: ``(x, y)`` with ``n`` examples.
      k: the number of folds, ``2 <= k <= n``.
      key: splits into the folds' key and the key every fold's ``fit`` uses.
      stratified: keep each class's share in every fold (``y`` must be class labels).
      progress: one progress bar for the whole cross-validation.

    Returns:
      A `CrossValidationResult` (per-fold scores, their mean and std, a table).

    Raises:
      ValueError: ``k < 2`` or ``k > n``, and what ``fit`` rejects.

    Examples:
      >>> x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> model = fnn.Sequential([fnn.Dense(2)])
      >>> cv = fnn.cross_validate(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.1),
      ...                         (x, y), k=5, key=jax.random.key(0), epochs=10, batch_size=8,
      ...                         metrics=["accuracy"], progress=False)
      >>> len(cv.scores["val_accuracy"]), cv.mean["val_accuracy"] > 0.8
      (5, True)
    """
    where = "cross_validate"
    checks.check_argument_order(where, loss, optimizer, data)
    x, y = checks.check_data(where, data, "data")
    n = len(jax.tree.leaves(x)[0])
    check_int(where, "k", k, minimum=2, maximum=n, maximum_name="the number of examples")
    checks.check_key(where, key)
    fold_key, fit_key = jax.random.split(key)
    labels = None
    if stratified:
        if not checks.is_leaf(y) or np.ndim(y) != 1:
            raise ValueError(f"{where}: stratified=True needs y to be one array of class "
                             f"labels, shape (n,); got {jax.tree.map(np.shape, y)}")
        labels = np.asarray(y)
    folds = kfold_indices(n, k, key=fold_key, stratify=labels)
    groups: dict[int, list[int]] = {}
    for j, (train_idx, _) in enumerate(folds):
        groups.setdefault(len(train_idx), []).append(j)
    bar = EpochBar(epochs * len(groups), wants_bar(progress))
    per_fold: dict[int, tuple] = {}
    # Each training-set size is its own program; on a CPU with several cores they train
    # side by side, one thread each, sharing the cores.
    threads = min(len(groups), parallel_groups(k))
    cores_each = max(1, parallel_groups(k) // len(groups))

    def train_group(members: list[int]) -> None:
        train = [(_take(x, folds[j][0]), _take(y, folds[j][0])) for j in members]
        held = [(_take(x, folds[j][1]), _take(y, folds[j][1])) for j in members]
        stack = lambda parts: jax.tree.map(lambda *a: np.stack(a), *parts)  # noqa: E731
        run = prepare(where, model, loss, optimizer, train[0], fit_key, epochs, batch_size,
                      held[0], metrics, loss_weights, early_stopping, drop_remainder,
                      shuffle, validation_batch_size, stacked=(stack(train), stack(held)))
        keys = jnp.stack([fit_key] * len(members))
        init = member_init(run.cfg.model, optimizer, checks.struct(run.x))
        params, state, opt_state, histories, best = train_members(
            keys, [f"fold {j}" for j in members], init(keys), run, epochs, early_stopping,
            bar, where, groups=cores_each)
        for i, j in enumerate(members):
            per_fold[j] = jax.tree.map(lambda a: a[i], (params, state, opt_state)) + (
                histories[i], best[i])

    try:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(train_group, members) for members in groups.values()]:
                done.result()
    finally:
        bar.close()
    ordered = [per_fold[j] for j in range(k)]
    params, state, opt_state = (jax.tree.map(lambda *a: jnp.stack(a), *[f[i] for f in ordered])
                                for i in range(3))
    history = [f[3] for f in ordered]
    rows = [final_row(h, f[4]) for h, f in zip(history, ordered)]
    names = [name for name in rows[0] if name.startswith("val_")]
    scores = {name: [row[name] for row in rows] for name in names}
    mean = {name: float(np.mean(v)) for name, v in scores.items()}
    std = {name: float(np.std(v)) for name, v in scores.items()}
    table = Table([{"fold": str(j), "train": len(folds[j][0]), "held out": len(folds[j][1]),
                    **{name: row[name] for name in names}} for j, row in enumerate(rows)]
                  + [{"fold": "mean", **mean}, {"fold": "std", **std}])
    return CrossValidationResult(params, state, opt_state, history, folds, scores, mean, std,
                                 table)
