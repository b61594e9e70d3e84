"""The static configuration of training: what a train step computes, resolved and checked once.

``build_config`` turns the user's arguments (a model, a loss name or
function, an optimizer, metric names, options) into a hashable
`TrainConfig`, the key under which the step, the epoch and the input
checks are compiled or traced once. It also settles what the metrics need to
know about the predictions: a loss that takes logits
(``binary_cross_entropy_with_logits``, ``softmax_cross_entropy``,
``sparse_softmax_cross_entropy``) tells the threshold metrics to read the
outputs as logits, a loss that takes probabilities tells them the opposite
(`fnn.losses.output_kind`); a metric given another reading is an error,
and where the loss does not say (a regression loss, a user's function),
binary metrics ask for ``from_logits`` at trace time.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax

from fnn import activations
from fnn import losses as losses_module
from fnn import metrics as metrics_module
from fnn.caching import memoize
from fnn.layers.function import as_layer
from fnn.layers.parallel import Parallel
from fnn.layers.sequential import Sequential
from fnn.optim.base import GradientTransformation
from fnn.train.step import outputs
from fnn.train.step.monitor import check_monitor_option
from fnn.train.step.precision import get_policy
from fnn.validation import check_int

RESERVED = ("loss", "learning_rate", "skipped")
"""History names that metrics may not take (nor ``val_*``)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything static about a train step (hashable: the key of the compiled-function caches).

    Attributes:
      model: an fnn layer.
      loss_fn: ``loss(predictions, targets) -> scalar``.
      update_fn: the optimizer's ``update``.
      metric_fns: ``((name, metric), ...)``.
      augment: ``augment(key, x) -> x`` or ``None``.
      policy: a `fnn.train.step.precision.Policy` or ``None``.
      accumulation_steps: micro-batches per batch.
      penalty: ``penalty(params) -> scalar`` added to the loss (a
        `fnn.regularizers.Penalty`), or ``None``.
      monitor: a `fnn.train.Monitor` (diagnostics inside the step), or ``None``.
    """

    model: Any
    loss_fn: Callable
    update_fn: Callable | None
    metric_fns: tuple = ()
    augment: Callable | None = None
    policy: Any = None
    accumulation_steps: int = 1
    penalty: Callable | None = None
    monitor: Any = None

    def logged_names(self) -> tuple[str, ...]:
        """The per-step numbers a training epoch averages: ``"loss"`` (the data loss),
        ``"penalty"`` (with a penalty), then each metric."""
        return (("loss",) + (("penalty",) if self.penalty is not None else ())
                + tuple(name for name, _ in self.metric_fns))


@memoize
def _metric_for(metric: Callable, from_logits: bool | None, reason: str) -> Callable:
    # Memoized, so an equal configuration gives the same (hashable) metric object back.
    if from_logits is None:
        return metric
    return metrics_module.with_from_logits(metric, from_logits, reason=reason)


def resolve_metrics(metrics: Sequence[Any] | str | Callable, loss_fn: Callable | None = None,
                    where: str = "fit") -> tuple:
    """``((name, fn), ...)`` from names and callables, told how to read the predictions.

    Args:
      metrics: metric names or callables (or one of them); for a model with
        several outputs, ``{output: [metric, ...]}`` (`fnn.train.step.outputs`).
      loss_fn: the loss; its `fnn.losses.output_kind` sets ``from_logits``
        of the threshold metrics (accuracy, precision, recall, F1).
      where: the calling function, named in messages.

    Returns:
      The metrics as ``(name, function)`` pairs (with a multi-output loss:
      each output's loss part first, ``"<output>_loss"``).

    Raises:
      ValueError: a duplicate or reserved name, or a metric set to read the
        predictions other than the loss does.
    """
    if isinstance(loss_fn, outputs.MultiOutputLoss):
        resolved = outputs.output_metrics(metrics, loss_fn, _resolve_one, where)
    else:
        resolved = _resolve_one(metrics, loss_fn)
    names = [name for name, _ in resolved]
    for name in names:
        if name in RESERVED or name.startswith("val_") or names.count(name) > 1:
            raise ValueError(f"metrics: name {name!r} is reserved or given twice "
                             f"(names: {names}; reserved: {RESERVED} and 'val_*')")
    return resolved


def _resolve_one(metrics: Any, loss_fn: Callable | None) -> tuple:
    """``((name, fn), ...)``: a list of names/callables, or a dict ``{name: metric}``
    naming one's own metrics (with one loss; with a loss per output a dict is per output)."""
    if metrics is None:
        metrics = ()
    elif isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    if isinstance(metrics, dict):
        for name in metrics:
            if not isinstance(name, str) or not name:
                raise ValueError(f"metrics: a dict of metrics maps names (strings) to metrics, "
                                 f"got the key {name!r}")
        named = list(metrics.items())
    else:
        named = [(metrics_module.metric_name(m), m) for m in metrics]
    kind = None if loss_fn is None else losses_module.output_kind(loss_fn)
    from_logits = None if kind is None else kind == "logits"
    reason = "" if kind is None else f"the loss {_name(loss_fn)} takes {kind}"
    return tuple((name, _metric_for(metrics_module.get(m), from_logits, reason))
                 for name, m in named)


def _last_layer(model: Any) -> Any:
    """The layer that produces the model's output (through nested `fnn.Sequential`)."""
    while isinstance(model, Sequential) and model.layers:
        model = model.layers[-1]
    return model


_SQUASHING = {activations.softmax: "softmax", jax.nn.softmax: "softmax",
              activations.sigmoid: "sigmoid", jax.nn.sigmoid: "sigmoid"}


def check_output_activation(where: str, model: Any, loss_fn: Callable) -> None:
    """``ValueError`` when a model ending in softmax/sigmoid feeds a loss that applies it again.

    ``softmax_cross_entropy`` (and the sparse and binary ``*_with_logits``
    forms) apply softmax/sigmoid themselves; given probabilities they squash
    them a second time and training stalls near the uniform loss.

    Args:
      where: the calling function, named in the message.
      model: the model (its last layer is inspected).
      loss_fn: the loss.
    """
    if isinstance(loss_fn, outputs.MultiOutputLoss):
        heads = _last_layer(model)
        if isinstance(heads, Parallel):
            for name in loss_fn.names:
                if name in heads.names:
                    check_output_activation(f"{where} (output {name!r})", heads.branch(name),
                                            loss_fn.part(name))
        return
    if losses_module.output_kind(loss_fn) != "logits":
        return
    last = _last_layer(model)
    function = getattr(last, "function", None) if hasattr(last, "fn") else None
    squash = _SQUASHING.get(function)
    if squash is not None:
        instead = ("binary_cross_entropy" if squash == "sigmoid" else "categorical_cross_entropy")
        raise ValueError(
            f"{where}: the model ends with Activation({squash!r}) but the loss {_name(loss_fn)} "
            f"takes logits and applies {squash} itself, so {squash} would be applied twice and "
            "training stalls near the uniform loss. Remove the final activation (the usual "
            f"choice: the loss is stable on logits), or use the loss {instead!r}, which takes "
            "probabilities.")


def build_config(model: Any, loss: Any, optimizer: Any, *, metrics: Sequence[Any] = (),
                 loss_weights: Any = None, augment: Callable | None = None, precision: Any = None,
                 accumulation_steps: int = 1, max_accumulation_steps: int | None = None,
                 where: str = "fit", penalty: Any = None, monitor: Any = None) -> TrainConfig:
    """Resolve names and check the static options of a train step.

    Args:
      model: an fnn layer or a pure function ``apply(params, x)``.
      loss: a loss name or callable, or one per output (`fnn.train.step.outputs`).
      optimizer: a ``fnn.optim`` transformation.
      metrics: metric names or callables (per output: a dict of lists).
      loss_weights: the weight of each output's loss (with a loss per output).
      augment: ``augment(key, x) -> x`` or ``None``.
      precision: a policy or its name, or ``None``.
      accumulation_steps: micro-batches per batch.
      max_accumulation_steps: the batch size, when known (a bound on ``accumulation_steps``).
      where: the calling function, named in messages.
      penalty: a weight penalty (`fnn.regularizers`) or ``None``.
      monitor: a `fnn.train.Monitor` or ``None``.

    Returns:
      The `TrainConfig`.

    Raises:
      ValueError / TypeError: unknown loss/metric name, bad ``accumulation_steps``,
        an optimizer without ``update``, a non-callable ``augment``, a final
        softmax/sigmoid before a loss that takes logits.
    """
    if isinstance(optimizer, GradientTransformation) or hasattr(optimizer, "update"):
        update_fn = optimizer.update
    elif callable(optimizer) and getattr(optimizer, "__module__", "").startswith("fnn.optim"):
        name = getattr(optimizer, "__name__", "the optimizer")
        raise TypeError(f"{where}: optimizer is the function fnn.optim.{name}, not an "
                        f"optimizer: did you forget to call it? e.g. fnn.optim.{name}(1e-3)")
    else:
        raise TypeError(f"{where}: optimizer must be a fnn.optim GradientTransformation (with "
                        f"init and update), got {type(optimizer).__name__}")
    check_int(where, "accumulation_steps", accumulation_steps, maximum=max_accumulation_steps,
              maximum_name="the batch size")
    if augment is not None and not callable(augment):
        raise TypeError(f"{where}: augment must be a function augment(key, x) -> x, got "
                        f"{augment!r}")
    if penalty is not None and not callable(penalty):
        raise TypeError(f"{where}: penalty must be a weight penalty such as "
                        f"fnn.regularizers.l2(1e-4) (a function params -> scalar), got "
                        f"{penalty!r:.80}")
    model, loss_fn = as_layer(model), outputs.resolve_loss(loss, loss_weights, where)
    check_output_activation(where, model, loss_fn)
    metric_fns = resolve_metrics(metrics, loss_fn, where)
    if penalty is not None and any(name == "penalty" for name, _ in metric_fns):
        raise ValueError(f"{where}: a metric is named 'penalty', which the history uses for "
                         f"the weight penalty; rename the metric")
    return TrainConfig(
        model=model, loss_fn=loss_fn, update_fn=update_fn,
        metric_fns=metric_fns, augment=augment,
        policy=None if precision is None else get_policy(precision),
        accumulation_steps=accumulation_steps, penalty=penalty,
        monitor=check_monitor_option(where, monitor))


def donate_buffers() -> bool:
    """Whether buffers are donated by default: on every backend but CPU.

    Donation lets XLA write the new ``params``/``state``/``opt_state`` into the
    buffers of the old ones, halving their memory on GPU/TPU; on CPU it
    measured no faster (``benchmarks/bench_fit.py``) and would cost a copy of
    the caller's arrays.
    """
    return jax.default_backend() != "cpu"


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or getattr(
        getattr(fn, "func", None), "__name__", None) or repr(fn)
