"""``fit``'s step stage: the optimizer wrapped for the precision's loss scale, and the
static configuration of one step (`fnn.train.step.train_config.TrainConfig`)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from fnn.train.step import loss_scaling
from fnn.train.step.precision import get_policy
from fnn.train.step.train_config import TrainConfig, build_config


class StepOptions(NamedTuple):
    """``fit``'s options of what one step computes."""

    metrics: Any = ()
    loss_weights: Any = None
    augment: Callable | None = None
    precision: Any = None
    loss_scale: Any = None
    accumulation_steps: int = 1
    penalty: Any = None
    monitor: Any = None


class Step(NamedTuple):
    """The step a fit trains with: its configuration, the optimizer (loss-scaled when the
    precision asks for it) and the given optimizer state (wrapped to match, or ``None``)."""

    cfg: TrainConfig
    optimizer: Any
    opt_state: Any


def build_step(where: str, model: Any, loss: Any, optimizer: Any, options: StepOptions,
               examples_per_step: int, opt_state: Any = None) -> Step:
    """Resolve the loss, metrics and precision, and wrap the optimizer for loss scaling.

    Args:
      where: the calling function, named in messages.
      model, loss, optimizer: as ``fit`` takes them.
      options: the step's options.
      examples_per_step: the batch size (bounds ``accumulation_steps``).
      opt_state: a given optimizer state, or ``None``.

    Returns:
      The `Step`.
    """
    policy = None if options.precision is None else get_policy(options.precision)
    scale = loss_scaling.for_policy(policy, options.loss_scale)
    opt, opt_state = loss_scaling.with_loss_scale(optimizer, opt_state, scale)
    cfg = build_config(model, loss, opt, metrics=options.metrics,
                       loss_weights=options.loss_weights, augment=options.augment,
                       precision=options.precision,
                       accumulation_steps=options.accumulation_steps,
                       max_accumulation_steps=examples_per_step, penalty=options.penalty,
                       monitor=options.monitor, where=where)
    return Step(cfg, opt, opt_state)
