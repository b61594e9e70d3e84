"""Inference over a whole dataset: ``fnn.predict`` and ``fnn.evaluate``.

Both run the model in evaluation mode (``train=False``: no dropout, the
model state read but not updated) in one compiled program. With ``batch_size`` the data is
processed ``batch_size`` examples at a time (``lax.map``, or a loop of
compiled calls for models that are slow inside loops on CPU, see
`fnn.train.epoch.strategy`), the last partial batch on its own; the outputs
are concatenated. ``evaluate`` computes the loss and every metric once, on
all the outputs, so each is the exact dataset value (the mean loss over all
examples; precision/recall/F1 of the whole set).
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from fnn.caching import memoize
from fnn.layers.function import as_layer
from fnn.train.step import checks
from fnn.train.epoch import data_parallel
from fnn.train.data import sample_weights
from fnn.train.data import streaming
from fnn.train.epoch import streamed_evaluation as streamed
from fnn.train.step.precision import get_policy
from fnn.train.loop.progress import wants_bar
from fnn.train.step.train_config import TrainConfig, check_output_activation, resolve_metrics
from fnn.train.data.splits import num_examples
from fnn.train.step.outputs import resolve_loss
from fnn.train.epoch.evaluation import concat, evaluation_function, forward_function, score
from fnn.validation import check_int


def _forward_with_bar(where: str, model: Any, policy: Any, batch_size: int, params: Any,
                      state: Any, x: Any) -> Any:
    """The outputs on ``x``, computed in about 20 compiled calls of whole batches with a
    tqdm bar over the examples (the same batches, so the same outputs)."""
    from tqdm import tqdm
    n = num_examples(x)
    batches = -(-n // batch_size)
    chunk = batch_size * max(1, -(-batches // 20))
    forward = forward_function(model, policy, batch_size)
    parts = []
    with tqdm(total=n, unit="example", desc=where, file=sys.stderr, leave=False,
              dynamic_ncols=True, mininterval=0, miniters=1) as bar:   # ~20 updates: each
        for start in range(0, n, chunk):
            part = jax.tree.map(lambda a: a[start:start + chunk], x)
            parts.append(jax.block_until_ready(forward(params, state, part)))
            bar.update(num_examples(part))
    return parts[0] if len(parts) == 1 else concat(parts)


def _shows_bar(verbose: Any, batch_size: int | None, where: str) -> bool:
    if verbose not in (0, 1) or isinstance(verbose, bool):
        raise ValueError(f"{where}: verbose must be 0 or 1 (a bar over the batches), got "
                         f"{verbose!r}")
    return bool(verbose) and batch_size is not None and wants_bar(True)


def predict(model: Any, params: Any, state: Any, x: Any, batch_size: int | None = None, *,
            precision: Any = None, mesh: Any = None, verbose: int = 0,
            stream: bool | None = None, prefetch: int = 2) -> Any:
    """The model's outputs on ``x`` in evaluation mode: ``y_hat = f(x; theta)``.

    Args:
      model: an fnn layer or a pure function ``apply(params, x)``.
      params, state: the trained parameters and state (``state={}`` if none).
      x: inputs with a leading batch axis (numpy or JAX); or a memory-mapped array, or
        an iterable of input batches (or of ``(x, y)`` pairs, ``y`` unused), streamed
        batch by batch as ``fit`` streams (`fnn.train.epoch.streamed_evaluation`).
      batch_size: examples per forward pass; ``None``: all at once.
      precision: a precision policy for the forward pass (default: params' dtype).
      mesh: spread the work over a mesh's ``"data"`` axis, as ``fit(..., mesh=)``
        does (`fnn.train.epoch.data_parallel.place`).
      verbose: ``1``: with ``batch_size``, a progress bar over the examples on a
        terminal (the same outputs, computed in about 20 calls); ``0``: none.
      stream, prefetch: as for `fnn.fit`.

    Returns:
      The outputs for every example (a JAX array, or the model's output pytree); for
      streamed data, numpy arrays assembled on the host (they need not fit on the
      device).

    Examples:
      >>> model = fnn.Dense(2)
      >>> params, state = model.init(jax.random.key(0), jnp.ones((1, 3)))
      >>> fnn.predict(model, params, state, np.ones((10, 3)), batch_size=4).shape
      (10, 2)
    """
    model = as_layer(model)
    check_int("predict", "batch_size", batch_size, allow_none=True)
    policy = None if precision is None else get_policy(precision)
    source = streaming.open_source("predict", x, stream, inputs_only=True)
    if source is not None:
        _streamed_only("predict", mesh=mesh)
        streaming.check_batch_size("predict", source, batch_size)
        streaming.set_value_check(source, lambda xb: checks.check_input_values(
            "predict", model, xb, ""))
        with _bar(verbose, source, "predict") as bar:
            return streamed.streamed_predict(model, policy, source, batch_size, params, state,
                                             prefetch, bar)
    checks.check_input_values("predict", model, x, "")
    bar = _shows_bar(verbose, batch_size, "predict")
    if mesh is not None:
        params, state, x = data_parallel.place("predict", mesh, params, state, x)
    if bar:
        return _forward_with_bar("predict", model, policy, batch_size, params, state, x)
    return forward_function(model, policy, batch_size)(params, state, x)


def evaluate(model: Any, params: Any, state: Any, data: Any, *, loss: Any = None,
             metrics: Sequence[Any] = (), loss_weights: Any = None, batch_size: int | None = None,
             precision: Any = None, mesh: Any = None, sample_weight: Any = None,
             class_weight: Any = None, verbose: int = 0, stream: bool | None = None,
             prefetch: int = 2) -> dict[str, float]:
    """Loss and metrics of the model on a whole dataset.

    ``loss`` is the mean over all examples, ``J = (1/m) sum_i L(f(x_i), y_i)``
    (the loss function's own reduction over all outputs at once); each metric
    is computed once on all the outputs.

    Args:
      model: an fnn layer or a pure function ``apply(params, x)``.
      params, state: the parameters and state.
      data: a pair ``(x, y)``; or memory-mapped arrays, or an iterable of ``(x, y)``
        batches, streamed batch by batch (`fnn.train.epoch.streamed_evaluation`: the
        loss and metrics are then sums over the batches divided at the end, equal to
        the in-memory values up to float rounding).
      loss: a loss name or callable, or ``None`` (then no ``"loss"`` entry);
        one per output for a model with several (as in `fnn.fit`).
      metrics: metric names or callables ``metric(predictions, targets)``;
        the threshold metrics read binary outputs as logits or probabilities
        as ``loss`` takes them (without a loss, pass
        ``fnn.metrics.get("accuracy", from_logits=...)``); per output a dict.
      loss_weights: with a loss per output, their weights.
      batch_size: examples per forward pass; ``None``: all at once.
      precision: a precision policy for the forward pass.
      mesh: spread the work over a mesh's ``"data"`` axis, as ``fit(..., mesh=)``
        does (`fnn.train.epoch.data_parallel.place`).
      sample_weight, class_weight: weight the loss as ``fit`` does,
        ``(1/N) sum_i w_i l_i`` (`fnn.train.data.sample_weights`); metrics unweighted.
      verbose: ``1``: with ``batch_size``, a progress bar over the examples on a
        terminal (the same numbers); ``0``: none.
      stream, prefetch: as for `fnn.fit`.

    Returns:
      ``{"loss": float, <metric>: float, ...}`` (Python floats).

    Raises:
      ValueError: x and y differ in length, or the shapes do not fit the
        model, loss or metrics (checked before compiling).

    Examples:
      >>> model = fnn.Dense(1, w_init=fnn.initializers.ones())
      >>> params, state = model.init(jax.random.key(0), jnp.ones((1, 2)))
      >>> fnn.evaluate(model, params, state, (np.ones((4, 2)), np.full((4, 1), 3.0)),
      ...              loss="mse")
      {'loss': 1.0}
    """
    model = as_layer(model)
    check_int("evaluate", "batch_size", batch_size, allow_none=True)
    source = streaming.open_source("evaluate", data, stream)
    if source is not None:
        _streamed_only("evaluate", mesh=mesh, sample_weight=sample_weight,
                       class_weight=class_weight)
        streaming.check_batch_size("evaluate", source, batch_size)
        data = streaming.first_batch(source, batch_size)
    x, y = checks.check_data("evaluate", data, "data")
    if loss is None and not metrics:
        raise ValueError("evaluate: give a loss and/or metrics to compute")
    loss_fn = None if loss is None else resolve_loss(loss, loss_weights, "evaluate")
    if loss_fn is not None:
        check_output_activation("evaluate", model, loss_fn)
    metric_fns = resolve_metrics(metrics, loss_fn, "evaluate")
    policy = None if precision is None else get_policy(precision)
    cfg = TrainConfig(model, loss_fn if loss_fn is not None else _no_loss, None, metric_fns,
                      None, policy)
    out = checks.check_shapes("evaluate", cfg, params, state, x, y, train=False)

    def check_values(x: Any, y: Any) -> None:
        if loss_fn is not None:
            checks.check_label_range("evaluate", cfg, y, out)
        checks.check_input_values("evaluate", model, x)
    if source is not None:
        streaming.set_value_check(source, check_values)
        with _bar(verbose, source, "evaluate") as bar:
            scores = streamed.streamed_scores(cfg, source, batch_size, params, state,
                                              prefetch=prefetch, bar=bar)
        return {k: float(v) for k, v in jax.device_get(scores).items()
                if k != "loss" or loss_fn is not None}
    check_values(x, y)
    weights = sample_weights.example_weights("evaluate", y, len(jax.tree.leaves(x)[0]),
                                             sample_weight, class_weight,
                                             sample_weights.classes_of(out))
    if weights is not None:
        if loss_fn is None:
            raise ValueError("evaluate: sample_weight/class_weight weight the loss; give one")
        sample_weights.check_weighted_loss("evaluate", loss_fn)
        cfg = sample_weights.weighted(cfg)
        loss_fn, metric_fns, y = cfg.loss_fn, cfg.metric_fns, (y, weights)
    bar = _shows_bar(verbose, batch_size, "evaluate")
    if mesh is not None:
        params, state, (x, y) = data_parallel.place("evaluate", mesh, params, state, (x, y))
    if bar:
        out = _forward_with_bar("evaluate", model, policy, batch_size, params, state, x)
        scores = _jitted_score(loss_fn, metric_fns)(out, y)
    else:
        fn = evaluation_function(model, loss_fn, metric_fns, batch_size, policy)
        scores = fn(params, state, x, y)
    return {k: float(v) for k, v in jax.device_get(scores).items()}


def _streamed_only(where: str, **options: Any) -> None:
    for name, value in options.items():
        if value is not None:
            raise ValueError(f"{where}: {name}= is not supported with streamed data yet; "
                             f"pass arrays in memory (stream=False)")


def _bar(verbose: Any, source: Any, where: str) -> Any:
    """A tqdm bar over the examples (or batches, when their number is unknown), or a
    context that gives ``None``."""
    import contextlib
    if not _shows_bar(verbose, 1, where):
        return contextlib.nullcontext()
    from tqdm import tqdm
    return tqdm(total=source.examples, unit="example", desc=where, file=sys.stderr,
                leave=False, dynamic_ncols=True)


@memoize
def _jitted_score(loss_fn: Callable | None, metric_fns: tuple) -> Callable:
    return jax.jit(functools.partial(score, loss_fn, metric_fns))


def _no_loss(predictions: Any, targets: Any) -> jax.Array:
    del predictions, targets
    return jnp.zeros([])
