"""skip_nonfinite: steps with NaN/inf gradients are skipped and counted, never swallowed."""

import jax
import jax.numpy as jnp
import numpy as np

from fnn import optim


def test_skip_nonfinite_skips_counts_and_matches_finite_run(loop):
    opt = optim.skip_nonfinite(optim.adam(0.1))
    bad = {1: jnp.nan, 3: jnp.inf}
    params, state = loop.params, opt.init(loop.params)
    reference_params, reference_state = loop.params, optim.adam(0.1).init(loop.params)
    for i in range(5):
        grads = loop.grads_at(i)
        if i in bad:
            grads = {**grads, "head": {**grads["head"], "b": jnp.array([bad[i]])}}
        new_params, state, updates = loop.step(opt.update, params, state, grads)
        if i in bad:
            assert loop.bits(new_params) == loop.bits(params)
            assert all(np.all(u == 0) for u in jax.tree.leaves(updates))
        else:
            reference_params, reference_state, _ = loop.step(
                optim.adam(0.1).update, reference_params, reference_state, grads)
        params = new_params
    assert int(optim.find_states(state, optim.SkipNonfiniteState)[0].skipped) == 2
    assert int(optim.find_states(state, optim.ScaleByAdamState)[0].count) == 3
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(reference_params)):
        np.testing.assert_array_equal(a, b)


def test_nonfinite_gradient_is_not_swallowed_without_skip():
    opt = optim.adam(0.1)
    updates, state = opt.update({"w": jnp.array([1.0, jnp.nan])}, opt.init({"w": jnp.zeros(2)}))
    assert np.isnan(updates["w"][1]) and np.isnan(state[0].mu["w"][1])
