"""``fit``'s starting-values stage: the model, loss and metrics traced on the inputs'
shapes (every check before anything is computed), the concrete values checked, the
example weights, then the parameters, model state and optimizer state (initialised,
given, or restored from the newest checkpoint)."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn.caching import memoize, shape_key, structs_of_key
from fnn.train.data import sample_weights, streaming
from fnn.train.loop import resume as resume_
from fnn.train.step import checks


@memoize
def jitted_init(model: Any, x_key: tuple) -> Callable:
    """``init(key) -> (params, state)``: fit's ``model.init(split(key)[0], x)``, compiled once
    per model and input layout (``x_key``: `fnn.caching.shape_key` of ``x``)."""
    x = structs_of_key(x_key)
    return jax.jit(lambda key: model.init(jax.random.split(key)[0], x))


@memoize
def _init_structs(model: Any, x_key: tuple, key_struct: jax.ShapeDtypeStruct) -> Any:
    return jax.eval_shape(model.init, key_struct, structs_of_key(x_key))


def initial_structs(model: Any, params: Any, state: Any, key: Any, x: Any) -> tuple[Any, Any]:
    """Shapes and dtypes of the starting ``(params, state)``, without computing anything.

    Raises:
      ValueError: ``params`` is ``None`` and the model cannot initialise itself
        (e.g. a plain function without ``init_fn``).
    """
    try:
        init_params, init_state = _init_structs(model, shape_key(x),
                                                jax.ShapeDtypeStruct(key.shape, key.dtype))
    except (ValueError, TypeError) as err:
        if params is None:
            # The init error says what is wrong (a FunctionLayer without init_fn says to
            # pass params=); advice to pass params= would mislead for bad data.
            raise ValueError(f"fit: the model initialises itself from x (params=None), and "
                             f"model.init fails for x of shape {jax.tree.map(jnp.shape, x)}: "
                             f"{err}") from err
        init_params, init_state = None, {}
    return (init_params if params is None else checks.struct(params),
            init_state if state is None else checks.struct(state))


def initial_params(model: Any, params: Any, state: Any, key: Any, x: Any,
                   state_struct: Any) -> tuple[Any, Any]:
    """``(params, state)``: the given ones, or ``model.init(init_key, x)`` (compiled once per shape).

    ``init_key = jax.random.split(key)[0]``, computed inside the compiled init.

    When ``params`` is given and ``state`` is not, the state comes from
    ``model.init`` if the model has any (the empty structure otherwise).
    ``state_struct`` is the state's structure from `initial_structs`.
    """
    if params is None or (state is None and jax.tree.leaves(state_struct)):
        new_params, new_state = jitted_init(model, shape_key(x))(key)
        params = new_params if params is None else params
        state = new_state if state is None else state
    return params, state_struct if state is None else state  # a struct without leaves


def check_opt_state(optimizer: Any, opt_state: Any, params: Any) -> Any:
    """The given ``opt_state`` (``None`` stays ``None``) checked against ``optimizer.init``.

    ``params`` may be structs: nothing is computed.

    Raises:
      ValueError: ``opt_state``'s structure or shapes differ from ``optimizer.init(params)``.
    """
    if opt_state is None:
        return None
    expected = jax.eval_shape(optimizer.init, params)
    if jax.tree.structure(expected) != jax.tree.structure(opt_state) or [
            s.shape for s in jax.tree.leaves(expected)] != [
            jnp.shape(a) for a in jax.tree.leaves(opt_state)]:
        raise ValueError("fit: opt_state does not match optimizer.init(params): expected "
                         f"{jax.tree.structure(expected)}, got {jax.tree.structure(opt_state)}")
    return opt_state


class Start(NamedTuple):
    """Where a fit starts.

    Attributes:
      cfg: the step's configuration, weighted (`fnn.train.data.sample_weights`)
        when the run has example weights.
      y: the training targets, ``(y, weights)`` when weighted.
      weighted: whether the run has example weights.
      check_values: ``check_values(x, y)``, the concrete-value checks (per streamed block).
      params, state, opt_state: the starting values (a restored checkpoint's on resume).
      resumed: the checkpoint resumed from (`fnn.train.loop.resume.Resumed`), or
        ``None``.
    """

    cfg: Any
    y: Any
    weighted: bool
    check_values: Callable
    params: Any
    state: Any
    opt_state: Any
    resumed: Any


def starting_values(where: str, step: Any, inputs: Any, key: Any, params: Any, state: Any,
                    class_weight: Any, manager: Any = None, run: dict | None = None,
                    resume: bool = False) -> Start:
    """Check everything on shapes, then compute the starting values.

    Args:
      where: the calling function, named in messages.
      step: the step (`fnn.train.step.build.Step`).
      inputs: the opened inputs (`fnn.train.data.inputs.Inputs`).
      key: ``fit``'s key (the init key is ``split(key)[0]``).
      params, state: given starting values, or ``None`` (``model.init``).
      class_weight: ``fit``'s ``class_weight``.
      manager, run, resume: the checkpoints (`fnn.train.loop.resume.manager_for`),
        the run's identity and whether to continue from the newest.

    Returns:
      The `Start`.
    """
    cfg, opt, x, y = step.cfg, step.optimizer, inputs.x, inputs.y
    # Every check runs on shapes only (jax.eval_shape): nothing is computed or compiled
    # before the inputs are known to fit together.
    param_structs, state_structs = initial_structs(cfg.model, params, state, key, x)
    out = checks.check_shapes(where, cfg, param_structs, state_structs, x, y)
    if inputs.validation is not None:
        checks.check_shapes(where, cfg, param_structs, state_structs, *inputs.validation,
                            train=False)
    check_values = functools.partial(checks.check_data_values, where, cfg, out)
    if inputs.kind == "memory":
        check_values(x, y)
        checks.check_finite_inputs(where, x)
    if inputs.val_source is not None:
        streaming.set_value_check(inputs.val_source, functools.partial(
            checks.check_data_values, where, cfg, out, data_name="validation_data"))
    elif inputs.validation is not None:
        checks.check_data_values(where, cfg, out, *inputs.validation, "validation_data")
        checks.check_finite_inputs(where, inputs.validation[0], "validation_data")
    opt_state = check_opt_state(opt, step.opt_state, param_structs)
    if hasattr(cfg.penalty, "selected"):
        cfg.penalty.selected(param_structs)          # its path patterns, before compiling
    weights = sample_weights.example_weights(where, y, inputs.n, inputs.sample_weight,
                                             class_weight, sample_weights.classes_of(out))
    if weights is not None:
        sample_weights.check_weighted_loss(where, cfg.loss_fn)
        cfg, y = sample_weights.weighted(cfg), (y, weights)
    params, state = initial_params(cfg.model, params, state, key, x, state_structs)
    if opt_state is None:
        opt_state = opt.init(params)
    resumed = None
    if manager is not None:
        resumed = resume_.restore(where, manager, resume, run, (params, state, opt_state))
        if resumed is not None:
            params, state, opt_state = jax.device_put(resumed[1:4])
    return Start(cfg, y, weights is not None, check_values, params, state, opt_state, resumed)
