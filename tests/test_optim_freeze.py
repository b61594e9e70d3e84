"""Freezing and masking, clipping, skipping non-finite steps, and clear errors for bad input."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import optim

PARAMS = {
    "body": {"0": {"w": jnp.array([[1.0, -0.0], [0.25, -2.0]]), "b": jnp.array([0.0, 0.5])},
             "1": {"w": jnp.array([[3.0], [-1.5]])}},
    "head": {"w": jnp.array([[0.5], [-0.5]]), "b": jnp.array([0.1])},
}
BODY_MASK = {"body": True, "head": False}


def grads_at(step):
    return jax.tree.map(lambda p: jnp.cos(p + step) + 0.5, PARAMS)


@functools.partial(jax.jit, static_argnums=0)
def step(update_fn, params, state, grads):
    updates, state = update_fn(grads, state, params)
    return optim.apply_updates(params, updates), state, updates


def run(opt, steps=3, params=PARAMS):
    state = opt.init(params)
    for i in range(steps):
        params, state, _ = step(opt.update, params, state, grads_at(i))
    return params, state


def state_size(state):
    return sum(np.size(x) for x in jax.tree.leaves(state))


def bits(tree):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize("spec", ["body", "body/*", ["body/0", "body/1/w"], BODY_MASK,
                                  lambda path: path.startswith("body/")])
def test_freeze_keeps_frozen_bit_identical_and_no_state(spec):
    opt = optim.chain(optim.freeze(spec), optim.adamw(0.1, weight_decay=0.1))
    params, state = run(opt)
    assert bits(params["body"]) == bits(PARAMS["body"])  # -0.0 stays -0.0
    assert np.signbit(params["body"]["0"]["w"][0, 1])
    # Eagerly too (inside one jit XLA may fold `p + 0` away; eagerly -0.0 + 0.0 would be +0.0).
    updates, _ = opt.update(grads_at(5), state, params)
    assert bits(optim.apply_updates(params, updates)["body"]) == bits(PARAMS["body"])
    # The head trains exactly as adamw alone on the head.
    head_only, _ = run(optim.adamw(0.1, weight_decay=0.1), params=PARAMS)
    np.testing.assert_allclose(params["head"]["w"], head_only["head"]["w"], rtol=1e-6)
    (adam_state,) = optim.find_states(state, optim.ScaleByAdamState)
    assert jax.tree.leaves(adam_state.mu["body"]) == []
    head_size = sum(np.size(x) for x in jax.tree.leaves(PARAMS["head"]))
    assert state_size(adam_state.mu) == state_size(adam_state.nu) == head_size
    # State: count, mu, nu over the head, b1, b2, eps, weight decay, learning rate.
    assert state_size(state) == 2 * head_size + 6


NESTED = {
    "chain_in_chain": lambda freeze, opt: optim.chain(optim.chain(freeze), opt),
    "freeze_then_clip_in_chain": lambda freeze, opt: optim.chain(
        optim.chain(optim.clip_by_value(10.0), freeze, optim.clip_by_global_norm(10.0)), opt),
    "skip_nonfinite": lambda freeze, opt: optim.chain(optim.skip_nonfinite(freeze), opt),
    "three_levels": lambda freeze, opt: optim.chain(optim.chain(optim.chain(freeze)), optim.identity(), opt),
}


@pytest.mark.parametrize("nesting", sorted(NESTED))
def test_freeze_in_a_nested_chain_masks_everything_after_it(nesting):
    # Weight decay would move frozen leaves if the adamw after the nested chain were not masked.
    opt = NESTED[nesting](optim.freeze("body"), optim.adamw(0.1, weight_decay=0.5))
    params, state = run(opt)
    assert bits(params["body"]) == bits(PARAMS["body"])
    (adam_state,) = optim.find_states(state, optim.ScaleByAdamState)
    assert jax.tree.leaves(adam_state.mu["body"]) == [] and jax.tree.leaves(adam_state.nu["body"]) == []
    flat, _ = run(optim.chain(optim.freeze("body"), optim.adamw(0.1, weight_decay=0.5)))
    for a, b in zip(jax.tree.leaves(params["head"]), jax.tree.leaves(flat["head"])):  # clips inactive
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.array_equal(params["head"]["w"], PARAMS["head"]["w"])


def test_two_freezes_in_nested_chains_mask_both():
    opt = optim.chain(optim.chain(optim.freeze("body/0")), optim.freeze("head/b"), optim.adamw(0.1))
    params, state = run(opt)
    assert bits(params["body"]["0"]) == bits(PARAMS["body"]["0"])
    assert bits(params["head"]["b"]) == bits(PARAMS["head"]["b"])
    (adam_state,) = optim.find_states(state, optim.ScaleByAdamState)
    assert sorted(optim.validation.path_to_str(p) for p, _ in
                  jax.tree_util.tree_flatten_with_path(adam_state.mu)[0]) == ["body/1/w", "head/w"]


def test_freeze_alone_and_after_other_transforms_zeroes_selected():
    updates, _ = optim.freeze("head").update(grads_at(0), optim.EmptyState())
    assert all(np.all(x == 0) for x in jax.tree.leaves(updates["head"]))
    np.testing.assert_array_equal(updates["body"]["1"]["w"], grads_at(0)["body"]["1"]["w"])
    params, _ = run(optim.chain(optim.sgd(0.1), optim.freeze(["head/w"])))
    assert bits(params["head"]["w"]) == bits(PARAMS["head"]["w"])
    assert not np.array_equal(params["head"]["b"], PARAMS["head"]["b"])


def test_freeze_pattern_matching_nothing_raises_naming_argument():
    opt = optim.chain(optim.freeze(["body", "haed/*"]), optim.sgd(0.1))
    with pytest.raises(ValueError, match="freeze: pattern 'haed/\\*' in mask_or_path_patterns "
                                         "matches no parameter; the parameter paths are: body/0/b"):
        opt.init(PARAMS)
    with pytest.raises(ValueError, match="'haed/\\*'"):
        optim.freeze("haed/*").update(grads_at(0), optim.EmptyState())


def test_masked_applies_inner_to_selected_only_and_passes_others_through():
    opt = optim.masked(optim.add_weight_decay(0.5), "*/w")
    grads = grads_at(1)
    updates, state = opt.update(grads, opt.init(PARAMS), PARAMS)
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
        keys = [k.key for k in path]
        got = functools.reduce(lambda t, k: t[k], keys, updates)
        p = functools.reduce(lambda t, k: t[k], keys, PARAMS)
        expected = g + 0.5 * p if keys[-1] == "w" else g
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert isinstance(state, optim.MaskedState)
    inner = optim.masked(optim.scale_by_adagrad(), "*/w").init(PARAMS).inner_state
    assert inner.sum_of_squares["head"]["b"] is None and inner.sum_of_squares["head"]["w"].shape == (2, 1)


def test_mask_errors():
    with pytest.raises(ValueError, match="masked: mask must have the params' tree structure"):
        optim.masked(optim.sgd(0.1), {"body": True, "tail": False}).init(PARAMS)
    with pytest.raises(TypeError, match="freeze: mask_or_path_patterns must be a path pattern"):
        optim.freeze({"body": 1.0})
    with pytest.raises(ValueError, match="masked: pattern 'nothing' in mask"):
        optim.masked(optim.sgd(0.1), "nothing").init(PARAMS)


def test_clip_by_global_norm_matches_numpy():
    tree = {"a": jnp.array([3.0, -4.0]), "b": (jnp.array([[1.0, 2.0]]), jnp.float32(-2.0))}
    flat = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])
    norm = np.sqrt(np.sum(flat**2))  # sqrt(34)
    assert float(optim.global_norm(tree)) == pytest.approx(norm, rel=1e-6)
    for max_norm in (1.0, 5.0, 10.0):
        opt = optim.clip_by_global_norm(max_norm)
        clipped, _ = jax.jit(opt.update)(tree, opt.init(tree))
        expected = flat * (max_norm / norm if norm > max_norm else 1.0)
        got = np.concatenate([np.ravel(x) for x in jax.tree.leaves(clipped)])
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    zeros, _ = opt.update(jax.tree.map(jnp.zeros_like, tree), opt.init(tree))
    assert all(np.all(x == 0) for x in jax.tree.leaves(zeros))
    with_nan, _ = opt.update({"a": jnp.array([jnp.nan, 1.0])}, opt.init(None))
    assert np.isnan(with_nan["a"][0])  # never silently swallowed


def test_clip_by_value_matches_numpy():
    x = jnp.array([-3.0, -0.5, 0.0, 0.7, 9.0])
    opt = optim.clip_by_value(0.6)
    np.testing.assert_array_equal(opt.update(x, opt.init(x))[0], np.clip(np.asarray(x), -0.6, 0.6))


def test_skip_nonfinite_skips_counts_and_matches_finite_run():
    opt = optim.skip_nonfinite(optim.adam(0.1))
    bad = {1: jnp.nan, 3: jnp.inf}
    params, state = PARAMS, opt.init(PARAMS)
    reference_params, reference_state = PARAMS, optim.adam(0.1).init(PARAMS)
    for i in range(5):
        grads = grads_at(i)
        if i in bad:
            grads = {**grads, "head": {**grads["head"], "b": jnp.array([bad[i]])}}
        new_params, state, updates = step(opt.update, params, state, grads)
        if i in bad:
            assert bits(new_params) == bits(params)
            assert all(np.all(u == 0) for u in jax.tree.leaves(updates))
        else:
            reference_params, reference_state, _ = step(optim.adam(0.1).update, reference_params,
                                                        reference_state, grads)
        params = new_params
    assert int(optim.find_states(state, optim.SkipNonfiniteState)[0].skipped) == 2
    assert int(optim.find_states(state, optim.ScaleByAdamState)[0].count) == 3
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference_params)):
        np.testing.assert_array_equal(a, b)


def test_nonfinite_gradient_is_not_swallowed_without_skip():
    opt = optim.adam(0.1)
    updates, state = opt.update({"w": jnp.array([1.0, jnp.nan])}, opt.init({"w": jnp.zeros(2)}))
    assert np.isnan(updates["w"][1]) and np.isnan(state[0].mu["w"][1])


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
    with pytest.raises(TypeError, match="adam: learning_rate must be a float or a scalar array, got str"):
        optim.adam("0.1")


def test_tree_mismatch_raises_naming_arguments():
    opt = optim.adam(0.1)
    state = opt.init(PARAMS)
    wrong_keys = {**grads_at(0), "tail": jnp.ones(1)}
    with pytest.raises(ValueError, match="adam: grads and params have different tree structures"):
        opt.update(wrong_keys, state, PARAMS)
    with pytest.raises(ValueError, match="scale_by_adam: grads and the params opt_state was built "
                                         "for have different tree structures"):
        opt.update(wrong_keys, state)
    wrong_shape = {**grads_at(0), "head": {"w": jnp.ones((2, 2)), "b": jnp.ones(1)}}
    with pytest.raises(ValueError, match="differ in shape at 'head/w': \\(2, 2\\) vs \\(2, 1\\)"):
        jax.jit(opt.update)(wrong_shape, state, PARAMS)
    with pytest.raises(ValueError, match="apply_updates: params and updates have different"):
        optim.apply_updates(PARAMS, {"body": PARAMS["body"]})
    with pytest.raises(ValueError, match="add_weight_decay: needs params"):
        optim.adamw(0.1).update(grads_at(0), optim.adamw(0.1).init(PARAMS))
