"""The loss, its gradient and the batch metrics of one training batch.

Three concerns of the train step live here:

- **mixed precision**: with a `fnn.train.step.precision.Policy`, params and
  inputs are cast to ``compute_dtype`` *inside* the differentiated function,
  outputs to ``output_dtype`` before the loss, so the gradients arrive in the
  params' own dtype (float32) and the optimizer never sees 16-bit values;
  the new model state is cast back to the dtype of the state passed in;
- **loss scaling**: the differentiated value is ``loss_scale.scale(loss)``
  (`fnn.train.step.loss_scaling`: the optimizer wrapper
  `fnn.train.loss_scaled` unscales);
- **gradient accumulation**: a batch of ``n`` examples is split into
  micro-batches of ``m = ceil(n / k)`` examples (the last one smaller when
  ``k`` does not divide ``n``), processed one after another (``lax.scan``,
  so only one micro-batch's activations are alive), and combined as
  ``g = sum_j (m_j / n) g_j``, ``L = sum_j (m_j / n) L_j``: for a loss that is
  a mean over examples this is the gradient of the whole batch, up to
  rounding. Micro-batch ``j`` gets the key ``fold_in(key, j)``; the model
  state is threaded through the micro-batches in order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from fnn.metrics import epoch_statistics
from fnn.train.data.splits import num_examples
from fnn.train.step.monitor import run_model

ACTIVATIONS = "monitor_activations"
"""The key of a monitor's activation statistics in the metrics of one (micro-)batch."""


def _cast_like(new_state: Any, old_state: Any) -> Any:
    """``new_state`` with each leaf in the dtype of the matching leaf of ``old_state``."""
    if jax.tree.structure(new_state) != jax.tree.structure(old_state):
        return new_state
    return jax.tree.map(lambda new, old: new.astype(jnp.result_type(old)), new_state, old_state)


def forward_and_grads(cfg: Any, params: Any, state: Any, x: Any, y: Any, key: Any,
                      loss_scale: Any) -> tuple[jax.Array, Any, dict, Any]:
    """``(loss, new_state, metrics, grads)`` of one (micro-)batch, without accumulation.

    Args:
      cfg: the step's `fnn.train.step.train_config.TrainConfig`.
      params, state: the model's parameters and state.
      x, y: the batch.
      key: the model's key (or ``None``).
      loss_scale: a loss scale to differentiate ``scale(loss)``, or ``None``.

    Returns:
      The unscaled loss, the new state, ``{name: value}`` of the metrics on
      this batch's outputs (with a monitor, its activation statistics under
      `ACTIVATIONS`), and the (scaled) gradients.
    """
    policy = cfg.policy

    def objective(params):
        p, xc = (params, x) if policy is None else policy.cast_to_compute((params, x))
        (out, new_state), activations = run_model(
            cfg, lambda: cfg.model.apply(p, state, xc, key=key, train=True))
        if policy is not None:
            out = policy.cast_to_output(out)
            new_state = _cast_like(new_state, state)
        loss = cfg.loss_fn(out, y)
        # J = L + Omega(theta): the penalty on the float32 parameters themselves.
        penalty = None if cfg.penalty is None else cfg.penalty(params)
        total = loss if penalty is None else loss + penalty
        scaled = total if loss_scale is None else loss_scale.scale(total)
        return scaled, (loss, penalty, new_state, out, activations)

    (_, (loss, penalty, new_state, out, activations)), grads = jax.value_and_grad(
        objective, has_aux=True)(params)
    metrics = batch_metrics(cfg, out, y)
    if penalty is not None:
        metrics["penalty"] = jnp.asarray(penalty, jnp.float32)
    if activations is not None:
        metrics[ACTIVATIONS] = activations      # a monitor's (train_step takes it out)
    return loss, new_state, metrics, grads


def batch_metrics(cfg: Any, out: Any, y: Any) -> dict:
    """Each metric on one batch's outputs: its value, or, for a metric that an epoch
    accumulates exactly (`fnn.metrics.epoch_statistics`: precision, recall, F1,
    AUC), the statistics to sum over the epoch's batches."""
    metrics = {}
    for name, fn in cfg.metric_fns:
        rule = epoch_statistics(fn)
        metrics[name] = (rule.stats(out, y) if rule is not None
                         else jnp.asarray(fn(out, y), jnp.float32))
    return metrics


def summed_names(cfg: Any) -> tuple[str, ...]:
    """The metrics whose per-batch values are statistics summed over an epoch."""
    return tuple(name for name, fn in cfg.metric_fns if epoch_statistics(fn) is not None)


def metric_results(cfg: Any, metrics: dict) -> dict:
    """``metrics`` with each summed metric's statistics turned into its value."""
    out = dict(metrics)
    for name, fn in cfg.metric_fns:
        rule = epoch_statistics(fn)
        if rule is not None and name in out:
            out[name] = jnp.asarray(rule.result(out[name]), jnp.float32)
    return out


def _weighted(tree: Any, weight: float) -> Any:
    return jax.tree.map(lambda a: a * jnp.asarray(weight, jnp.result_type(a)), tree)


def _add(a: Any, b: Any) -> Any:
    return jax.tree.map(jnp.add, a, b)


def loss_and_grads(cfg: Any, params: Any, state: Any, x: Any, y: Any, key: Any,
                   loss_scale: Any) -> tuple[jax.Array, Any, dict, Any]:
    """Like `forward_and_grads`, over ``cfg.accumulation_steps`` micro-batches.

    Returns:
      ``(loss, new_state, metrics, grads)`` of the whole batch (see the module
      docstring for how micro-batches combine).
    """
    k = cfg.accumulation_steps
    n = num_examples(x)
    if k == 1 or n == 1:
        return forward_and_grads(cfg, params, state, x, y, key, loss_scale)
    m = -(-n // k)
    full, tail = divmod(n, m)

    summed = summed_names(cfg)

    def micro(j, state, xs, ys):
        j_key = None if key is None else jax.random.fold_in(key, j)
        loss, state, metrics, grads = forward_and_grads(cfg, params, state, xs, ys, j_key,
                                                        loss_scale)
        size = num_examples(xs)
        counts = {k: metrics.pop(k) for k in summed}        # sums, not means
        loss, metrics, grads = _weighted((loss, metrics, grads), size / n)
        return state, (loss, {**metrics, **counts}, grads)

    split = lambda a: a[:full * m].reshape((full, m) + a.shape[1:])
    xs, ys = jax.tree.map(split, x), jax.tree.map(split, y)

    def body(carry, inputs):
        state, total = carry
        state, part = micro(inputs[0], state, *inputs[1:])
        return (state, _add(total, part)), None

    state, first = micro(0, state, *jax.tree.map(lambda a: a[0], (xs, ys)))
    rest = (jnp.arange(1, full), *jax.tree.map(lambda a: a[1:], (xs, ys)))
    (state, total), _ = jax.lax.scan(body, (state, first), rest) if full > 1 else (
        (state, first), None)
    if tail:
        cut = lambda a: a[full * m:]
        state, part = micro(full, state, jax.tree.map(cut, x), jax.tree.map(cut, y))
        total = _add(total, part)
    loss, metrics, grads = total
    return loss, state, metrics, grads
