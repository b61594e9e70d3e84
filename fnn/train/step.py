"""One training step as a pure, jitted function: ``(params, state, opt_state, batch, key)``.

The step computes, for a batch ``(x, y)``::

    if augment:  augment_key, key = jax.random.split(key);  x = augment(augment_key, x)
    L, g = value_and_grad(theta -> loss(model.apply(theta, state, x, key=key, train=True), y))
    u, opt_state = optimizer.update(g, opt_state, theta)
    theta <- theta + u                                   (fnn.optim.apply_updates)

and returns the new ``(params, state, opt_state)`` and the batch's metrics
``{"loss": L, <metric>: ..., "learning_rate": eta}`` (``learning_rate``:
the one this update used, when the optimizer has one). Mixed precision, loss
scaling and gradient accumulation are described in :mod:`fnn.train.gradients`.

Compiled functions are cached on the model, the loss and metric functions,
``optimizer.update`` (never on hyperparameter values, which live in
``opt_state``) and the static options, so building a step again for an equal
configuration, e.g. ``adam(1e-3)`` then ``adam(3e-4)``, reuses the compiled
program.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Sequence

import jax

from fnn import losses as losses_module
from fnn import metrics as metrics_module
from fnn.layers.function import as_layer
from fnn.optim.base import GradientTransformation, apply_updates
from fnn.optim.hyperparams import current_learning_rate
from fnn.train.gradients import loss_and_grads
from fnn.train.precision import get_policy
from fnn.train.scaled_optimizer import LossScaledState

RESERVED = ("loss", "learning_rate", "skipped")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything static about a train step (hashable: the key of the compiled-function caches).

    Attributes:
      model: an fnn layer.
      loss_fn: ``loss(predictions, targets) -> scalar``.
      update_fn: the optimizer's ``update``.
      metric_fns: ``((name, metric), ...)``.
      augment: ``augment(key, x) -> x`` or ``None``.
      policy: a :class:`fnn.train.precision.Policy` or ``None``.
      accumulation_steps: micro-batches per batch.
    """

    model: Any
    loss_fn: Callable
    update_fn: Callable
    metric_fns: tuple = ()
    augment: Callable | None = None
    policy: Any = None
    accumulation_steps: int = 1


def metric_name(metric: Any) -> str:
    """The history key of a metric: the name as given, or a callable's ``__name__``."""
    if isinstance(metric, str):
        return metric
    return getattr(metric, "__name__", None) or getattr(
        getattr(metric, "func", None), "__name__", type(metric).__name__)


def resolve_metrics(metrics: Sequence[Any] | str | Callable) -> tuple:
    """``((name, fn), ...)`` from names and callables; ``ValueError`` on a duplicate name."""
    if metrics is None:
        metrics = ()
    elif isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    resolved = tuple((metric_name(m), metrics_module.get(m)) for m in metrics)
    names = [name for name, _ in resolved]
    for name in names:
        if name in RESERVED or name.startswith("val_") or names.count(name) > 1:
            raise ValueError(f"metrics: name {name!r} is reserved or given twice "
                             f"(names: {names}; reserved: {RESERVED} and 'val_*')")
    return resolved


def build_config(model: Any, loss: Any, optimizer: Any, *, metrics: Sequence[Any] = (),
                 augment: Callable | None = None, precision: Any = None,
                 accumulation_steps: int = 1) -> TrainConfig:
    """Resolve names and check the static options of a train step.

    Raises:
      ValueError / TypeError: unknown loss/metric name, bad ``accumulation_steps``,
        an optimizer without ``update``, a non-callable ``augment``.
    """
    if isinstance(optimizer, GradientTransformation) or hasattr(optimizer, "update"):
        update_fn = optimizer.update
    else:
        raise TypeError("optimizer must be a fnn.optim GradientTransformation (with init and "
                        f"update), got {type(optimizer).__name__}")
    if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) or (
            accumulation_steps < 1):
        raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}")
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function augment(key, x) -> x, got {augment!r}")
    return TrainConfig(
        model=as_layer(model), loss_fn=losses_module.get(loss), update_fn=update_fn,
        metric_fns=resolve_metrics(metrics), augment=augment,
        policy=None if precision is None else get_policy(precision),
        accumulation_steps=accumulation_steps)


def train_step(cfg: TrainConfig, params: Any, state: Any, opt_state: Any, batch: Any,
               key: Any) -> tuple[Any, Any, Any, dict]:
    """The un-jitted step (see the module docstring); ``batch`` is ``(x, y)``."""
    x, y = batch
    if cfg.augment is not None:
        if key is None:
            raise ValueError("train step: augment needs a key, got key=None")
        augment_key, key = jax.random.split(key)
        x = cfg.augment(augment_key, x)
    loss_scale = opt_state.loss_scale if isinstance(opt_state, LossScaledState) else None
    loss, state, metrics, grads = loss_and_grads(cfg, params, state, x, y, key, loss_scale)
    updates, opt_state = cfg.update_fn(grads, opt_state, params)
    params = apply_updates(params, updates)
    out = {"loss": loss, **metrics}
    learning_rate = current_learning_rate(opt_state)
    if learning_rate is not None:
        out["learning_rate"] = learning_rate
    return params, state, opt_state, out


def cached(fn: Callable) -> Callable:
    """``functools.lru_cache`` on hashable arguments; a fresh call for unhashable ones."""
    memo = functools.lru_cache(maxsize=256)(fn)

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            hash(args)
        except TypeError:
            return fn(*args)
        return memo(*args)

    wrapper.cache_clear = memo.cache_clear
    return wrapper


def donate_buffers() -> bool:
    """Whether buffers are donated by default: on every backend but CPU.

    Donation lets XLA write the new ``params``/``state``/``opt_state`` into the
    buffers of the old ones, halving their memory on GPU/TPU; on CPU it
    measured no faster (``benchmarks/bench_fit.py``).
    """
    return jax.default_backend() != "cpu"


@cached
def jitted_step(cfg: TrainConfig, donate: bool) -> Callable:
    """The compiled step for ``cfg`` (one per configuration)."""
    return jax.jit(functools.partial(train_step, cfg),
                   donate_argnums=(0, 1, 2) if donate else ())


def make_train_step(model: Any, loss: Any, optimizer: GradientTransformation, *,
                    metrics: Sequence[Any] = (), augment: Callable | None = None,
                    precision: Any = None, accumulation_steps: int = 1,
                    donate: bool | None = None) -> Callable:
    """Build the jitted training step ``(params, state, opt_state, batch, key)``.

    Args:
      model: an fnn layer, or a pure function ``apply(params, x)`` (wrapped
        with :func:`fnn.as_layer`).
      loss: a loss name (``"mse"``, ``"sparse_softmax_cross_entropy"``, ...) or
        a callable ``loss(predictions, targets) -> scalar`` (a mean over the batch).
      optimizer: a ``fnn.optim`` :class:`GradientTransformation`; for float16
        loss scaling wrap it with :func:`fnn.train.loss_scaled`.
      metrics: metric names or callables ``metric(predictions, targets) -> scalar``.
      augment: ``augment(key, x) -> x`` applied to each batch (``fnn.train.augment``).
      precision: ``None``, a policy name (``"mixed_bfloat16"``) or a
        :class:`fnn.train.precision.Policy`.
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

    Example:
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
    cfg = build_config(model, loss, optimizer, metrics=metrics, augment=augment,
                       precision=precision, accumulation_steps=accumulation_steps)
    return jitted_step(cfg, donate_buffers() if donate is None else bool(donate))
