"""``fnn.sweep``: a grid (or list) of optimizer hyperparameters trained in one compiled program.

fnn's optimizers keep their hyperparameters (learning rate, ``b1``, weight
decay, ...) as float32 arrays in the optimizer state
(`fnn.optim.set_hyperparams`), so configurations that differ only
there share one compiled step: ``sweep`` stacks one optimizer state per
configuration and runs the epoch under `jax.vmap`, as
`fnn.fit_ensemble` does for keys. Every row starts from the same key
(the same initial weights, shuffle order and dropout masks), so row ``i`` is
exactly ``fnn.fit`` with configuration ``i`` and only the hyperparameters
differ between rows.

Instead of an optimizer, ``sweep`` takes a factory ``make(**config) -> optimizer``
(``lambda learning_rate, weight_decay: fnn.optim.adamw(learning_rate,
weight_decay=weight_decay)``): each configuration's optimizer is built and its
own state initialised, and the rows still share one program as long as the
optimizers differ only in the hyperparameters kept in their state (checked by
comparing their traced update computations; otherwise an error says which
configuration differs).
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn.caching import shape_key
from fnn.optim.base import GradientTransformation
from fnn.optim.hyperparams import hyperparameter_names, set_hyperparams
from fnn.train.loop.early_stopping import EarlyStopping
from fnn.train.step import checks
from fnn.train.many.ensemble import prepare
from fnn.train.many.members import (chunk_saving, make_saving, repeat_members, stack_members,
                                    train_members)
from fnn.train.many.memory import auto_chunk_size
from fnn.train.loop.initial_values import jitted_init
from fnn.train.loop.progress import EpochBar, wants_bar
from fnn.train.many.table import Table, final_row
from fnn.validation import check_int


class SweepResult(NamedTuple):
    """What `sweep` returns.

    Attributes:
      params, state, opt_state: stacked, row ``i`` (leading axis) for configuration ``i``.
      history: one ``fit``-style history per configuration.
      configs: the configurations, in row order (``{name: value}``).
      table: one row per configuration: its hyperparameters, then the last epoch's
        numbers (the best epoch's with early stopping and ``restore_best``).
    """

    params: Any
    state: Any
    opt_state: Any
    history: list
    configs: list
    table: Table


def _configurations(hyperparams: Any, grid: bool) -> list[dict]:
    if isinstance(hyperparams, Mapping):
        if not hyperparams:
            raise ValueError("sweep: hyperparams is empty; give e.g. "
                             "{'learning_rate': [1e-3, 1e-2]}")
        names = list(hyperparams)
        values = []
        for name in names:
            v = hyperparams[name]
            v = [v] if np.ndim(v) == 0 else [
                e.item() if isinstance(e, np.generic) else e for e in np.ravel(v)]
            if not v:
                raise ValueError(f"sweep: hyperparams[{name!r}] has no values")
            values.append(v)
        if grid:
            return [dict(zip(names, combo)) for combo in itertools.product(*values)]
        lengths = {name: len(v) for name, v in zip(names, values)}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"sweep: with grid=False every hyperparameter list is one "
                             f"configuration per position and needs the same length; got "
                             f"lengths {lengths}")
        return [dict(zip(names, combo)) for combo in zip(*values)]
    configs = list(hyperparams)
    if not configs or not all(isinstance(c, Mapping) for c in configs):
        raise ValueError("sweep: hyperparams must be a dict {name: [values]} (a grid) or a "
                         "list of dicts {name: value} (one per configuration)")
    if len({tuple(sorted(c)) for c in configs}) != 1:
        raise ValueError("sweep: every configuration must set the same hyperparameters, got "
                         f"{[sorted(c) for c in configs]}")
    return [dict(c) for c in configs]


def sweep(model: Any, loss: Any, optimizer: Any, data: Any, *, hyperparams: Any,
          key: jax.Array, epochs: int, batch_size: int | None, grid: bool = True,
          validation_data: Any = None, metrics: Sequence[Any] = (), loss_weights: Any = None,
          early_stopping: EarlyStopping | None = None, progress: bool = True,
          drop_remainder: bool = False, shuffle: bool = True,
          validation_batch_size: int | None = None,
          chunk_size: int | None = None, checkpoint_dir: Any = None,
          checkpoint_every: int = 1, resume: bool = False) -> SweepResult:
    """Train one model per hyperparameter configuration, all in one compiled program.

    ``model``, ``loss``, ``data``, ``epochs``, ``batch_size``, ``validation_data``,
    ``metrics``, ``loss_weights``, ``early_stopping``, ``drop_remainder``, ``shuffle``
    and ``validation_batch_size`` are as for `fnn.fit` (early stopping acts per
    configuration).

    Args:
      optimizer: an ``fnn.optim`` optimizer, whose state's hyperparameters the
        configurations replace (`fnn.optim.hyperparameter_names` lists them:
        ``learning_rate``, ``b1``, ``weight_decay``, ...); or a factory
        ``make(**config) -> optimizer`` called once per configuration (module docstring).
      hyperparams: ``{name: [values]}`` (every combination with ``grid=True``; the
        lists zipped position by position with ``grid=False``), or a list of
        configurations ``[{name: value}, ...]``.
      key: one PRNG key for every row (same initialisation, shuffle and dropout).
      progress: one progress bar for the whole sweep.
      chunk_size: train at most this many configurations at a time (same results);
        default from a memory estimate (`fnn.train.many.ensemble.auto_chunk_size`).
      checkpoint_dir, checkpoint_every, resume: as for `fnn.fit_ensemble`.

    Returns:
      A `SweepResult`: stacked ``params`` (row ``i`` = configuration ``i``,
      exactly ``fit`` with it), one history per row, and a printable ``table``.

    Raises:
      ValueError: an unknown hyperparameter (the message lists the optimizer's), a bad
        value, zipped lists of different lengths, a factory whose optimizers differ in
        more than their state's hyperparameters, and what ``fit`` rejects.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
      >>> y = x[:, :1] ** 2
      >>> result = fnn.sweep(model, "mse", fnn.optim.adam(1e-3), (x, y),
      ...                    hyperparams={"learning_rate": [1e-3, 1e-2, 1e-1]},
      ...                    key=jax.random.key(0), epochs=5, batch_size=16, progress=False)
      >>> result.params["0"]["w"].shape, result.table.columns()["learning_rate"]
      ((3, 3, 8), [0.001, 0.01, 0.1])
    """
    where = "sweep"
    checks.check_key(where, key)
    check_int(where, "chunk_size", chunk_size, allow_none=True)
    configs = _configurations(hyperparams, grid)
    factory = None
    if not isinstance(optimizer, (GradientTransformation, tuple)) and callable(optimizer):
        factory, optimizers = optimizer, [_build(optimizer, config) for config in configs]
        optimizer = optimizers[0]
    run = prepare(where, model, loss, optimizer, data, key, epochs, batch_size,
                  validation_data, metrics, loss_weights, early_stopping, drop_remainder,
                  shuffle, validation_batch_size)
    x = run.x
    params, state = jitted_init(run.cfg.model, shape_key(x))(key)   # fit's own init
    if factory is None:
        base = optimizer.init(params)
        names = hyperparameter_names(base)
        for name in configs[0]:
            if name not in names:
                raise ValueError(f"sweep: the optimizer has no hyperparameter {name!r}; it "
                                 f"has: {names}")
        states = [set_hyperparams(base, **config) for config in configs]   # checks values
    else:
        states = _factory_states(optimizers, configs, params)
    rows = len(configs)
    size = chunk_size or auto_chunk_size(run.cfg.model, optimizer, checks.struct(x),
                                         batch_size, rows)
    bar = EpochBar(epochs * -(-rows // size), wants_bar(progress))
    results = []
    try:
        saving = make_saving(where, checkpoint_dir, checkpoint_every, resume, key, run,
                             drop_remainder, shuffle, size,
                             configs=json.loads(json.dumps(configs, default=repr)))
        for first in range(0, rows, size):
            count = min(size, rows - first)
            start = (repeat_members(params, count), repeat_members(state, count),
                     jax.tree.map(lambda *a: jnp.stack(a), *states[first:first + count]))
            keys = jnp.stack([key] * count)
            ids = [f"configuration {i}" for i in range(first, first + count)]
            results.append(train_members(keys, ids, start, run, epochs, early_stopping, bar,
                                         where, saving=chunk_saving(saving, first // size)))
    finally:
        bar.close()
    params, state, opt_state = (stack_members([r[i] for r in results]) for i in range(3))
    history = [h for r in results for h in r[3]]
    best = [e for r in results for e in r[4]]
    table = Table([{**{k: _number(v) for k, v in config.items()}, **final_row(h, epoch)}
                   for config, h, epoch in zip(configs, history, best)])
    return SweepResult(params, state, opt_state, history, configs, table)


def _number(value: Any) -> Any:
    """A configuration value for the table: a float when it is a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _build(factory: Any, config: dict) -> GradientTransformation:
    try:
        opt = factory(**config)
    except TypeError as error:
        raise TypeError(f"sweep: the optimizer factory is called with each configuration's "
                        f"hyperparameters as keyword arguments ({sorted(config)}); calling "
                        f"it with {config} failed: {error}") from error
    if not isinstance(opt, GradientTransformation):
        raise TypeError(f"sweep: the optimizer factory must return an fnn.optim optimizer "
                        f"(a GradientTransformation); for {config} it returned {opt!r:.80}")
    return opt


def update_fingerprint(optimizer: GradientTransformation, opt_state: Any, params: Any) -> tuple:
    """A hashable description of what ``optimizer.update`` computes from ``opt_state``: the
    state's structure, shapes and dtypes, and the traced update (its jaxpr and constants).

    Two optimizers with equal fingerprints differ at most in the values kept in their
    states (the hyperparameters), so members using them share one compiled program.
    """
    closed = jax.make_jaxpr(optimizer.update)(params, opt_state, params)
    consts = tuple((np.asarray(c).shape, str(np.asarray(c).dtype), np.asarray(c).tobytes())
                   for c in closed.consts)
    return (jax.tree.structure(opt_state), shape_key(opt_state), str(closed.jaxpr), consts)


def _factory_states(optimizers: list, configs: list, params: Any) -> list:
    """Each configuration's own initial state, after checking that the first
    optimizer's ``update`` computes every other one's from its state: the same state
    structure and the same traced computation (constants included)."""
    states = [opt.init(params) for opt in optimizers]
    reference = update_fingerprint(optimizers[0], states[0], params)
    for i, (opt, opt_state) in enumerate(zip(optimizers, states)):
        if i == 0:
            continue
        if update_fingerprint(opt, opt_state, params) != reference:
            raise ValueError(
                f"sweep: the factory's optimizers for configuration 0 {configs[0]} and "
                f"configuration {i} {configs[i]} differ in more than the hyperparameters "
                f"kept in their state (a different structure or a constant baked into the "
                f"update, e.g. a schedule's length or nesterov=), so they cannot share one "
                f"compiled program; sweep such settings in separate calls")
    return states
