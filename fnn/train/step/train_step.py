"""One training step as a pure, jitted function: ``(params, state, opt_state, batch, key)``.

The step computes, for a batch ``(x, y)``::

    if augment:  augment_key, key = jax.random.split(key);  x = augment(augment_key, x)
    L, g = value_and_grad(theta -> loss(model.apply(theta, state, x, key=key, train=True), y))
    u, opt_state = optimizer.update(g, opt_state, theta)
    theta <- theta + u                                   (fnn.optim.apply_updates)

and returns the new ``(params, state, opt_state)`` and the batch's metrics
``{"loss": L, <metric>: ..., "learning_rate": eta}`` (``learning_rate``:
the one this update used, when the optimizer has one). Mixed precision, loss
scaling and gradient accumulation are described in `fnn.train.step.gradients`.

The compiled step is cached on its `fnn.train.step.train_config.TrainConfig`
(the model, the loss and metric functions, ``optimizer.update`` and the
static options; never on hyperparameter values, which live in
``opt_state``), so building a step again for an equal configuration, e.g.
``adam(1e-3)`` then ``adam(3e-4)``, reuses the compiled program.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax

from fnn.caching import memoize
from fnn.optim.base import GradientTransformation, apply_updates
from fnn.optim.hyperparams import current_learning_rate
from fnn.train.step.train_config import TrainConfig, build_config, donate_buffers
from fnn.train.step import monitor
from fnn.train.step.gradients import ACTIVATIONS, loss_and_grads, metric_results
from fnn.train.step.loss_scaling import loss_scale_of

def train_step(cfg: TrainConfig, params: Any, state: Any, opt_state: Any, batch: Any,
               key: Any, index: Any = None) -> tuple[Any, Any, Any, dict]:
    """The un-jitted step (see the module docstring); ``batch`` is ``(x, y)``.

    ``index`` is the step's index in its epoch: a `fnn.train.Monitor` with
    ``every > 1`` measures the steps whose index it divides (``None``: measure this one).
    With a monitor, the metrics hold its sums under ``"monitor"``.
    """
    x, y = batch
    if cfg.augment is not None:
        if key is None:
            raise ValueError("train step: augment needs a key, got key=None")
        augment_key, key = jax.random.split(key)
        x = cfg.augment(augment_key, x)
    scale = loss_scale_of(opt_state)
    loss, state, metrics, grads = loss_and_grads(cfg, params, state, x, y, key, scale)
    activations = metrics.pop(ACTIVATIONS, None)
    updates, opt_state = cfg.update_fn(grads, opt_state, params)
    if cfg.monitor is not None:
        unscaled = grads if scale is None else scale.unscale(grads)
        numbers = monitor.step_numbers(cfg.monitor, unscaled, updates, activations, index)
    params = apply_updates(params, updates)
    out = {"loss": loss, **metrics}
    if cfg.monitor is not None:
        out["monitor"] = numbers
    learning_rate = current_learning_rate(opt_state)
    if learning_rate is not None:
        out["learning_rate"] = learning_rate
    return params, state, opt_state, out


def _step_with_values(cfg: TrainConfig, *args: Any) -> tuple:
    """``train_step`` with every metric as its value on the batch (the epoch keeps the
    statistics of precision, recall, F1 and AUC to sum them; a single step reports them)."""
    params, state, opt_state, metrics = train_step(cfg, *args)
    metrics = metric_results(cfg, metrics)
    if "monitor" in metrics:
        metrics.update(monitor.results(metrics.pop("monitor"), params))
    return params, state, opt_state, metrics


@memoize
def jitted_step(cfg: TrainConfig, donate: bool) -> Callable:
    """The compiled step for ``cfg`` (one per configuration)."""
    return jax.jit(functools.partial(_step_with_values, cfg),
                   donate_argnums=(0, 1, 2) if donate else ())


def make_train_step(model: Any, loss: Any, optimizer: GradientTransformation, *,
                    metrics: Sequence[Any] = (), loss_weights: Any = None,
                    augment: Callable | None = None,
                    precision: Any = None, accumulation_steps: int = 1,
                    donate: bool | None = None) -> Callable:
    """Build the jitted training step ``(params, state, opt_state, batch, key)``.

    Args:
      model: an fnn layer, or a pure function ``apply(params, x)`` (wrapped
        with `fnn.as_layer`).
      loss: a loss name (``"mse"``, ``"sparse_softmax_cross_entropy"``, ...) or
        a callable ``loss(predictions, targets) -> scalar`` (a mean over the batch).
      optimizer: a ``fnn.optim`` `GradientTransformation`; for float16
        loss scaling wrap it with `fnn.train.loss_scaled`.
      metrics: metric names or callables ``metric(predictions, targets) -> scalar``
        (with a loss per output: ``{output: [metric, ...]}``, see `fnn.train.step.outputs`).
      loss_weights: with a loss per output, the weight of each.
      augment: ``augment(key, x) -> x`` applied to each batch (``fnn.train.data.augment``).
      precision: ``None``, a policy name (``"mixed_bfloat16"``) or a
        `fnn.train.step.precision.Policy`.
      accumulation_steps: split each batch into this many micro-batches and
        accumulate their gradients (one optimizer update per batch).
      donate: donate ``params``, ``state`` and ``opt_state`` to the step, so
        XLA writes the results into their buffers (half the memory for them).
        ``None`` (default): donate on GPU/TPU, not on CPU (no gain measured
        there). A donated array is deleted: always continue with the returned
        ones. Everything inside ``opt_state`` is consumed too, including an
        array you passed as a hyperparameter (``adam(jnp.float32(1e-3))``
        keeps that array in its state); ``fnn.fit`` copies what you pass
        before donating.

    Returns:
      ``step(params, state, opt_state, (x, y), key) -> (params, state,
      opt_state, metrics)``, jitted; ``metrics`` holds scalar arrays
      ``"loss"``, each metric, and ``"learning_rate"``.

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(1)])
      >>> opt = fnn.optim.sgd(0.1)
      >>> x, y = jnp.ones((16, 3)), jnp.zeros((16, 1))
      >>> params, state = model.init(jax.random.key(0), x)
      >>> opt_state = opt.init(params)
      >>> step = fnn.train.make_train_step(model, "mse", opt)
      >>> for i in range(3):
      ...     params, state, opt_state, m = step(params, state, opt_state, (x, y),
      ...                                        jax.random.key(i))
      >>> sorted(m), float(m["learning_rate"])
      (['learning_rate', 'loss'], 0.1...)
    """
    cfg = build_config(model, loss, optimizer, metrics=metrics, loss_weights=loss_weights,
                       augment=augment,
                       precision=precision, accumulation_steps=accumulation_steps,
                       where="make_train_step")
    return jitted_step(cfg, donate_buffers() if donate is None else bool(donate))
