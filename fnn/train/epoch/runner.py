"""``fit``'s epoch-runner stage: the compiled epoch for the run's data (in memory or
streamed) and its validation pass, as two functions the host loop calls."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax

from fnn.train.epoch import data_parallel
from fnn.train.epoch.evaluation import evaluation_function
from fnn.train.epoch.in_memory import EpochConfig, epoch_function, plan
from fnn.train.epoch.streamed import streamed_epoch
from fnn.train.epoch.streamed_evaluation import streamed_scores


class Runner(NamedTuple):
    """What the host loop calls each epoch.

    Attributes:
      run_epoch: ``run_epoch(params, state, opt_state, data, key, epoch, bar) ->
        (params, state, opt_state, numbers)``; ``bar`` counts a streamed epoch's steps.
      validate: ``validate(params, state, epoch) -> numbers`` (device scalars), or ``None``
        without validation data.
      steps: the steps per epoch (a number, or words when an iterable does not say).
    """

    run_epoch: Callable
    validate: Callable | None
    steps: Any


def epoch_runner(cfg: Any, val_cfg: Any, inputs: Any, placed: Any, devices: Any) -> Runner:
    """The run's `Runner`.

    Args:
      cfg: the step's configuration (weighted when the run has example weights).
      val_cfg: the configuration validation scores with (never weighted).
      inputs: the opened inputs (`fnn.train.data.inputs.Inputs`).
      placed: the placed arrays (`fnn.train.epoch.placement.Placed`).
      devices: the mesh and dispatch (`fnn.train.epoch.placement.Devices`).
    """
    batching, mesh, source = inputs.batching, devices.mesh, placed.source
    ecfg = EpochConfig(cfg, batching.batch_size, bool(batching.drop_remainder), devices.mode,
                       devices.chunk, bool(batching.shuffle), mesh)
    if source is None:
        compiled = epoch_function(ecfg, placed.donate)

        def run_epoch(params, state, opt_state, data, key, epoch, bar):
            return compiled(params, state, opt_state, data, key, epoch)
    else:
        def run_epoch(params, state, opt_state, data, key, epoch, bar):
            return streamed_epoch(ecfg, placed.donate, source, batching.prefetch, params,
                                  state, opt_state, data, key, epoch, on_steps=bar.steps)
    validate = None
    if inputs.val_source is not None:
        validate = functools.partial(streamed_scores, val_cfg, inputs.val_source,
                                     inputs.validation_batch_size, prefetch=batching.prefetch,
                                     mesh=mesh)
    elif inputs.validation is not None:
        run_validation = evaluation_function(val_cfg.model, val_cfg.loss_fn,
                                             val_cfg.metric_fns, inputs.validation_batch_size,
                                             cfg.policy)
        validation = (jax.device_put(inputs.validation) if mesh is None
                      else data_parallel.put_data(mesh, inputs.validation))

        def validate(params: Any, state: Any, epoch: int) -> dict:
            return run_validation(params, state, *validation)
    full, _, remainder = plan(inputs.n, batching.batch_size, batching.drop_remainder)
    steps = (full + (remainder > 0) if source is None or source.examples is not None
             else batching.steps_per_epoch or "an unknown number of")
    return Runner(run_epoch, validate, steps)
