"""Bad optimizer input gets a clear error naming the function and the argument."""

import jax
import jax.numpy as jnp
import pytest

from fnn import optim


BAD_HYPERPARAMETERS = [
    (optim.sgd, dict(learning_rate=-0.1), "sgd: learning_rate must be >= 0"),
    (optim.adam, dict(learning_rate=float("nan")), "adam: learning_rate must be finite"),
    (optim.adam, dict(b1=1.0), "adam: b1 must be in \\[0, 1\\)"),
    (optim.adam, dict(b2=-0.1), "adam: b2 must be in \\[0, 1\\)"),
    (optim.adam, dict(eps=-1e-8), "adam: eps must be >= 0"),
    (optim.adamw, dict(weight_decay=-1.0), "adamw: weight_decay must be >= 0"),
    (optim.nadam, dict(b1=1.5), "nadam: b1 must be in"),
    (optim.momentum, dict(beta=1.0), "momentum: beta must be in"),
    (optim.rmsprop, dict(eps=-1.0), "rmsprop: eps must be >= 0"),
    (optim.rmsprop, dict(beta=2.0), "rmsprop: beta must be in"),
    (optim.adagrad, dict(eps=-1.0), "adagrad: eps must be >= 0"),
    (optim.adadelta, dict(rho=1.0), "adadelta: rho must be in"),
    (optim.lion, dict(b2=1.0), "lion: b2 must be in"),
    (optim.adam, dict(learning_rate=jnp.ones(3)), "adam: learning_rate must be a scalar"),
    (optim.scale_by_adam, dict(b1=-0.5), "scale_by_adam: b1 must be in"),
    (optim.clip_by_global_norm, dict(max_norm=-1.0), "clip_by_global_norm: max_norm must be >= 0"),
    (optim.clip_by_value, dict(clip_value=-1.0), "clip_by_value: clip_value must be >= 0"),
    (optim.add_l1, dict(l1=-1.0), "add_l1: l1 must be >= 0"),
    (optim.scale_by_learning_rate, dict(learning_rate=lambda step: -0.1 + 0 * step),
     "learning_rate \\(schedule\\(0\\)\\) must be >= 0"),
]


@pytest.mark.parametrize("factory, kwargs, message", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_raise_naming_argument(factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        factory(**kwargs)


def test_wrong_hyperparameter_type_raises():
    with pytest.raises(TypeError, match="adam: learning_rate must be a real number or a scalar array, got str"):
        optim.adam("0.1")


def test_tree_mismatch_raises_naming_arguments(loop):
    opt = optim.adam(0.1)
    state = opt.init(loop.params)
    wrong_keys = {**loop.grads_at(0), "tail": jnp.ones(1)}
    with pytest.raises(ValueError, match="adam: grads and params have different tree structures"):
        opt.update(wrong_keys, state, loop.params)
    with pytest.raises(ValueError, match="scale_by_adam: grads and the params opt_state was built "
                                         "for have different tree structures"):
        opt.update(wrong_keys, state)
    wrong_shape = {**loop.grads_at(0), "head": {"w": jnp.ones((2, 2)), "b": jnp.ones(1)}}
    with pytest.raises(ValueError, match="differ in shape at 'head/w': \\(2, 2\\) vs \\(2, 1\\)"):
        jax.jit(opt.update)(wrong_shape, state, loop.params)
    with pytest.raises(ValueError, match="apply_updates: params and updates have different"):
        optim.apply_updates(loop.params, {"body": loop.params["body"]})
    with pytest.raises(ValueError, match="add_weight_decay: needs params"):
        optim.adamw(0.1).update(loop.grads_at(0), optim.adamw(0.1).init(loop.params))
