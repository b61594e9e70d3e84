"""masked, partition, set_to_zero and freeze: frozen leaves stay bit-identical with no state."""

import functools

import jax
import numpy as np
import pytest

from fnn import optim
from fnn.train import StaticLossScale, loss_scaled

BODY_MASK = {"body": True, "head": False}


@pytest.mark.parametrize("spec", ["body", "body/*", ["body/0", "body/1/w"], BODY_MASK,
                                  lambda path: path.startswith("body/")])
def test_freeze_keeps_frozen_bit_identical_and_no_state(loop, spec):
    opt = optim.freeze(spec, optim.adamw(0.1, weight_decay=0.1))
    params, state = loop.run(opt)
    assert loop.bits(params["body"]) == loop.bits(loop.params["body"])  # -0.0 stays -0.0
    assert np.signbit(params["body"]["0"]["w"][0, 1])
    # Eagerly too (inside one jit XLA may fold `p + 0` away; eagerly -0.0 + 0.0 would be +0.0).
    updates, _ = opt.update(loop.grads_at(5), state, params)
    assert loop.bits(optim.apply_updates(params, updates)["body"]) == loop.bits(loop.params["body"])
    # The head trains exactly as adamw alone on the head.
    head_only, _ = loop.run(optim.adamw(0.1, weight_decay=0.1))
    np.testing.assert_allclose(params["head"]["w"], head_only["head"]["w"], rtol=1e-6)
    (adam_state,) = optim.find_states(state, optim.ScaleByAdamState)
    assert jax.tree.leaves(adam_state.mu["body"]) == []
    head_size = loop.state_size(loop.params["head"])
    assert loop.state_size(adam_state.mu) == loop.state_size(adam_state.nu) == head_size
    # State: count, mu, nu over the head, b1, b2, eps, weight decay, learning rate.
    assert loop.state_size(state) == 2 * head_size + 6


WRAPPERS = {
    # The case: loss scaling around the freeze (it moved w by -0.05 a step before).
    "loss_scaled": lambda opt: loss_scaled(opt, StaticLossScale(1.0)),
    "skip_nonfinite": optim.skip_nonfinite,
    "chain_in_chain": lambda opt: optim.chain(optim.chain(opt)),
    "clip_before": lambda opt: optim.chain(optim.clip_by_global_norm(10.0), opt),
    "masked": lambda opt: optim.masked(opt, lambda path: True),
}
INNER = {
    "adamw": lambda: optim.adamw(0.1, weight_decay=0.5),
    "nested_chain_with_decay": lambda: optim.chain(
        optim.chain(optim.clip_by_value(10.0), optim.add_weight_decay(0.5)), optim.momentum(0.1)),
    "schedule": lambda: optim.adamw(optim.schedules.cosine_decay(0.1, 10), weight_decay=0.5),
}


@pytest.mark.parametrize("inner", sorted(INNER))
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_no_wrapper_loses_a_freeze(loop, wrapper, inner):
    opt = WRAPPERS[wrapper](optim.freeze("body", INNER[inner]()))
    params, state = loop.run(opt)
    assert loop.bits(params["body"]) == loop.bits(loop.params["body"])
    assert not np.array_equal(params["head"]["w"], loop.params["head"]["w"])
    # No optimizer state is kept for a frozen leaf, at any depth of any wrapper.
    for path, _ in jax.tree_util.tree_leaves_with_path(state):
        assert "body" not in optim.validation.path_to_str(path)


def test_chain_refuses_transforms_after_a_freeze(loop):
    # A chain is a plain fold: adamw after the freeze would decay the frozen w.
    for opt in (optim.chain(loss_scaled(optim.freeze("body"), StaticLossScale(1.0)),
                            optim.adamw(0.1, weight_decay=0.5)),
                optim.chain(optim.freeze("body"), optim.adam(0.1)),
                optim.chain(optim.skip_nonfinite(optim.chain(optim.freeze("body"))), optim.sgd(0.1))):
        with pytest.raises(ValueError, match="element 0 contains fnn.optim.freeze and 1 "
                                             "transform.*freeze\\(mask, fnn.optim.chain"):
            opt.init(loop.params)


def test_two_freezes_nest(loop):
    opt = optim.freeze("body/0", optim.freeze("head/b", optim.adamw(0.1)))
    params, state = loop.run(opt)
    assert loop.bits(params["body"]["0"]) == loop.bits(loop.params["body"]["0"])
    assert loop.bits(params["head"]["b"]) == loop.bits(loop.params["head"]["b"])
    (adam_state,) = optim.find_states(state, optim.ScaleByAdamState)
    assert sorted(optim.validation.path_to_str(p) for p, _ in
                  jax.tree_util.tree_flatten_with_path(adam_state.mu)[0]) == ["body/1/w", "head/w"]


def test_freeze_alone_or_last_zeroes_selected(loop):
    opt = optim.freeze("head")
    updates, _ = opt.update(loop.grads_at(0), opt.init(loop.params))
    assert all(np.all(x == 0) for x in jax.tree.leaves(updates["head"]))
    np.testing.assert_array_equal(updates["body"]["1"]["w"], loop.grads_at(0)["body"]["1"]["w"])
    params, _ = loop.run(optim.chain(optim.sgd(0.1), optim.freeze(["head/w"])))
    assert loop.bits(params["head"]["w"]) == loop.bits(loop.params["head"]["w"])
    assert not np.array_equal(params["head"]["b"], loop.params["head"]["b"])


def test_freeze_pattern_matching_nothing_raises_naming_argument(loop):
    opt = optim.freeze(["body", "haed/*"], optim.sgd(0.1))
    with pytest.raises(ValueError, match="freeze: pattern 'haed/\\*' in mask_or_path_patterns "
                                         "matches no parameter; the parameter paths are: body/0/b"):
        opt.init(loop.params)
    with pytest.raises(ValueError, match="'haed/\\*'"):
        optim.freeze("haed/*").update(loop.grads_at(0), optim.FreezeState(optim.EmptyState()))


def test_partition_sends_each_leaf_to_its_transform_with_its_own_state(loop):
    labels = lambda path: "slow" if path.startswith("body") else "fast"
    opt = optim.partition({"slow": optim.sgd(0.01), "fast": optim.adam(0.1)}, labels)
    params, state = loop.run(opt, steps=2)
    body, _ = loop.run(optim.sgd(0.01), steps=2)
    head, _ = loop.run(optim.adam(0.1), steps=2)
    assert loop.bits(params["body"]) == loop.bits(body["body"])
    for a, b in zip(jax.tree.leaves(params["head"]), jax.tree.leaves(head["head"])):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    (adam_state,) = optim.find_states(state, optim.ScaleByAdamState)
    assert jax.tree.leaves(adam_state.mu["body"]) == []
    tree_labels = optim.partition({"a": optim.sgd(1.0), "b": optim.set_to_zero()},
                                  {"body": "a", "head": "b"})
    updates, _ = tree_labels.update(loop.grads_at(0), tree_labels.init(loop.params), loop.params)
    assert all(np.all(u == 0) and np.all(np.signbit(u)) for u in jax.tree.leaves(updates["head"]))
    with pytest.raises(ValueError, match="partition: parameter 'head/b' has label 'c', which has "
                                         "no transform"):
        optim.partition({"a": optim.sgd(1.0)}, lambda p: "c" if p == "head/b" else "a").init(
            loop.params)


def test_masked_applies_inner_to_selected_only_and_passes_others_through(loop):
    opt = optim.masked(optim.add_weight_decay(0.5), "*/w")
    grads = loop.grads_at(1)
    updates, state = opt.update(grads, opt.init(loop.params), loop.params)
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
        keys = [k.key for k in path]
        got = functools.reduce(lambda t, k: t[k], keys, updates)
        p = functools.reduce(lambda t, k: t[k], keys, loop.params)
        expected = g + 0.5 * p if keys[-1] == "w" else g
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert isinstance(state, optim.MaskedState)
    inner = optim.masked(optim.scale_by_adagrad(), "*/w").init(loop.params).inner_state
    assert inner.sum_of_squares["head"]["b"] is None and inner.sum_of_squares["head"]["w"].shape == (2, 1)


def test_mask_errors(loop):
    with pytest.raises(ValueError, match="masked: mask must have the params' tree structure"):
        optim.masked(optim.sgd(0.1), {"body": True, "tail": False}).init(loop.params)
    with pytest.raises(TypeError, match="freeze: mask_or_path_patterns must be a path pattern"):
        optim.freeze({"body": 1.0})
    with pytest.raises(ValueError, match="masked: pattern 'nothing' in mask"):
        optim.masked(optim.sgd(0.1), "nothing").init(loop.params)
