"""Models with several outputs: a loss per output, weights, and metrics per output.

A multi-task model (e.g. ``Sequential([trunk..., Parallel({"digit": ...,
"parity": ...})])``) returns a dict (or tuple) of outputs, and its targets
``y`` are a dict (or tuple) of the same structure. ``fit(loss={"digit":
"sparse_softmax_cross_entropy", "parity": "bce_with_logits"},
loss_weights={"digit": 1.0, "parity": 0.5})`` trains it on

    J = sum_k w_k L_k(y_hat_k, y_k)

and the history reports ``loss`` (``J``) and each part ``"<output>_loss"``
(``L_k``, unweighted, as Keras does), and the metrics given per output
(``metrics={"digit": ["accuracy"]}``) as ``"<output>_<metric>"``. A tuple
output's parts are named ``output_0``, ``output_1``, ...
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from fnn import losses as losses_module
from fnn.validation import check_number


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _structure(tree: Any) -> str:
    if isinstance(tree, Mapping):
        return f"a dict with keys {sorted(tree)}"
    if isinstance(tree, (tuple, list)):
        return f"a {type(tree).__name__} of length {len(tree)}"
    return f"a single array of shape {getattr(tree, 'shape', '?')}"


@dataclasses.dataclass(frozen=True)
class MultiOutputLoss:
    """``J = sum_k w_k L_k(predictions[k], targets[k])`` over named (or numbered) outputs.

    Attributes:
      names: the output keys (``"0", "1", ...`` for tuple outputs).
      losses: the loss of each output.
      weights: the weight ``w_k`` of each output.
      named: outputs are a dict (``True``) or a tuple (``False``).

    Examples:
      >>> loss = fnn.train.step.outputs.resolve_loss({"a": "mse", "b": "mae"}, {"a": 1.0, "b": 0.5})
      >>> p = {"a": jnp.ones((2, 1)), "b": jnp.ones((2, 1))}
      >>> t = {"a": jnp.zeros((2, 1)), "b": jnp.full((2, 1), 3.0)}
      >>> float(loss(p, t))     # 1 * 1 + 0.5 * 2
      2.0
    """

    names: tuple[str, ...]
    losses: tuple[Callable, ...]
    weights: tuple[float, ...]
    named: bool

    output_kind = None  # mixed: each part has its own (fnn.losses.output_kind)

    @property
    def __name__(self) -> str:
        parts = ", ".join(f"{prefix(self, n)}: {_name(l)}" for n, l in zip(self.names, self.losses))
        return f"MultiOutputLoss({parts})"

    def part(self, name: str) -> Callable:
        """The loss of output ``name``."""
        return self.losses[self.names.index(name)]

    def pick(self, tree: Any, name: str, what: str) -> Any:
        """Output ``name`` of ``tree`` (the predictions or the targets); ``ValueError`` if absent."""
        if self.named:
            if not isinstance(tree, Mapping) or set(tree) != set(self.names):
                raise ValueError(f"the loss has one part per output {sorted(self.names)}, but the "
                                 f"{what} are {_structure(tree)}")
            return tree[name]
        if not isinstance(tree, (tuple, list)) or len(tree) != len(self.names):
            raise ValueError(f"the loss has {len(self.names)} parts (one per output), but the "
                             f"{what} are {_structure(tree)}")
        return tree[int(name)]

    def __call__(self, predictions: Any, targets: Any) -> Any:
        total = 0.0
        for name, loss, weight in zip(self.names, self.losses, self.weights):
            part = loss(self.pick(predictions, name, "model outputs"),
                        self.pick(targets, name, "targets y"))
            total = total + weight * part
        return total


@dataclasses.dataclass(frozen=True)
class OutputMetric:
    """``metric(predictions[output], targets[output])``: a loss part or a metric of one output."""

    loss: MultiOutputLoss
    output: str
    metric: Callable

    def __call__(self, predictions: Any, targets: Any) -> Any:
        return self.metric(self.loss.pick(predictions, self.output, "model outputs"),
                           self.loss.pick(targets, self.output, "targets y"))

    @property
    def epoch_statistics(self) -> Any:
        """The wrapped metric's epoch statistics, on this output (or ``None``)."""
        from fnn.metrics import EpochStatistics, epoch_statistics
        rule = epoch_statistics(self.metric)
        if rule is None:
            return None
        pick = self.loss.pick
        return EpochStatistics(
            lambda p, t: rule.stats(pick(p, self.output, "model outputs"),
                                    pick(t, self.output, "targets y")), rule.result)


def prefix(loss: MultiOutputLoss, name: str) -> str:
    """The history prefix of output ``name``: the name itself, or ``output_<i>``."""
    return name if loss.named else f"output_{name}"


def _weights(loss_weights: Any, names: tuple[str, ...], named: bool, where: str) -> tuple:
    if loss_weights is None:
        return (1.0,) * len(names)
    if named:
        if not isinstance(loss_weights, Mapping) or set(loss_weights) != set(names):
            raise ValueError(f"{where}: loss_weights must be a dict with the loss's keys "
                             f"{sorted(names)}, got {loss_weights!r}")
        values = [loss_weights[n] for n in names]
    else:
        if not isinstance(loss_weights, (tuple, list)) or len(loss_weights) != len(names):
            raise ValueError(f"{where}: loss_weights must be a list of {len(names)} numbers (one "
                             f"per output), got {loss_weights!r}")
        values = list(loss_weights)
    return tuple(float(check_number(where, f"loss_weights[{n!r}]", v, "nonnegative"))
                 for n, v in zip(names, values))


def resolve_loss(loss: Any, loss_weights: Any = None, where: str = "fit") -> Callable:
    """A loss function from a name, a callable, or one per output (dict or list).

    Args:
      loss: a loss name or callable; or ``{output: loss}`` for a model with
        dict outputs; or ``[loss_0, loss_1, ...]`` for tuple outputs.
      loss_weights: ``None`` (all 1), or the weights in the same structure.
      where: the calling function, named in messages.

    Returns:
      the loss function (a `MultiOutputLoss` for several outputs).

    Raises:
      ValueError: unknown names, weights without a loss per output, weights of
        another structure or negative.
    """
    if isinstance(loss, Mapping) or isinstance(loss, (tuple, list)):
        named = isinstance(loss, Mapping)
        names = tuple(loss) if named else tuple(str(i) for i in range(len(loss)))
        if not names:
            raise ValueError(f"{where}: loss has no outputs")
        parts = tuple(losses_module.get(loss[n] if named else loss[int(n)]) for n in names)
        return MultiOutputLoss(names, parts, _weights(loss_weights, names, named, where), named)
    if loss_weights is not None:
        raise ValueError(f"{where}: loss_weights weigh the losses of several outputs; give a loss "
                         "per output, e.g. loss={'digit': ..., 'parity': ...}, "
                         "loss_weights={'digit': 1.0, 'parity': 0.5}")
    return losses_module.get(loss)


def output_metrics(metrics: Any, loss: MultiOutputLoss, resolve: Callable,
                   where: str = "fit") -> tuple:
    """``((name, fn), ...)``: each output's loss part, then the metrics given per output.

    Args:
      metrics: ``{output: [metric, ...]}`` (a list of lists for tuple outputs), or empty.
      loss: the multi-output loss.
      resolve: ``resolve(metrics, loss_fn) -> ((name, fn), ...)`` for one output.
      where: the calling function, named in messages.

    Returns:
      the metrics, named ``"<output>_loss"`` and ``"<output>_<metric>"``.
    """
    if metrics is None or (isinstance(metrics, (tuple, list, Mapping)) and not metrics):
        metrics = {}
    if isinstance(metrics, (tuple, list)) and not loss.named and all(
            isinstance(m, (tuple, list)) for m in metrics) and len(metrics) == len(loss.names):
        metrics = dict(zip(loss.names, metrics))
    if not isinstance(metrics, Mapping):
        raise ValueError(
            f"{where}: the model has several outputs {[prefix(loss, n) for n in loss.names]}; "
            "give the metrics per output, e.g. metrics={'digit': ['accuracy']} (a list of lists "
            "for tuple outputs), so each is computed on the output it is meant for")
    unknown = sorted(set(metrics) - set(loss.names))
    if unknown:
        raise ValueError(f"{where}: metrics name outputs {unknown} that the loss does not have "
                         f"(outputs: {list(loss.names)})")
    resolved = [(f"{prefix(loss, n)}_loss", OutputMetric(loss, n, loss.part(n)))
                for n in loss.names]
    for n in loss.names:
        for name, fn in resolve(metrics.get(n, ()), loss.part(n)):
            resolved.append((f"{prefix(loss, n)}_{name}", OutputMetric(loss, n, fn)))
    return tuple(resolved)


def loss_parts(loss_fn: Callable, predictions: Any, targets: Any) -> list[tuple[str, Callable,
                                                                                 Any, Any]]:
    """``[(label, loss, predictions_k, targets_k), ...]``: one entry per output.

    A single-output loss gives one entry with label ``""``. Used by the input
    checks to look at each output with its own loss. Outputs the loss cannot
    find are left out (the loss itself reports them).
    """
    if not isinstance(loss_fn, MultiOutputLoss):
        return [("", loss_fn, predictions, targets)]
    parts = []
    for name in loss_fn.names:
        try:
            p = loss_fn.pick(predictions, name, "model outputs")
            t = loss_fn.pick(targets, name, "targets y")
        except ValueError:
            return []
        parts.append((f"output {prefix(loss_fn, name)!r}: ", loss_fn.part(name), p, t))
    return parts

