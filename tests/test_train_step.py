"""The pure train step: a hand-written loop from it reproduces fit; vmap over learning rates."""


import jax
import jax.numpy as jnp
import numpy as np

import fnn
from train_setup import KEY, LOSS, MODEL, PARAMS, STATE, X, Y, allclose, fit, make_step


def test_hand_written_loop_from_make_train_step_reproduces_fit(monkeypatch):
    # As on a GPU: make_train_step and fit donate by default (fit copies what it is given).
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    opt = fnn.optim.adam(0.01)
    step = fnn.train.make_train_step(MODEL, LOSS, opt)
    init_key, loop_key = jax.random.split(KEY)
    params, state = MODEL.init(init_key, X)
    opt_state = opt.init(params)
    first = (params, opt_state)
    for epoch in range(2):
        shuffle_key, steps_key = jax.random.split(jax.random.fold_in(loop_key, epoch))
        perm = np.asarray(fnn.train.shuffled_indices(shuffle_key, len(X)))
        for i, start in enumerate(range(0, len(X), 8)):
            idx = perm[start:start + 8]
            params, state, opt_state, _ = step(params, state, opt_state, (X[idx], Y[idx]),
                                               jax.random.fold_in(steps_key, i))
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(first))  # donated
    given = MODEL.init(init_key, X)[0]
    result = fit(optimizer=opt, params=given)
    jax.tree.map(np.testing.assert_array_equal, result.params, params)
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(given))  # fit copied it


def test_train_step_vmaps_over_learning_rates_in_one_compilation():
    # A sweep: the learning rate lives in opt_state, so one vmapped step trains both.
    step = make_step(MODEL, LOSS, fnn.optim.adam(1e-2))
    states = [fnn.optim.adam(lr).init(PARAMS) for lr in (1e-2, 1e-3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *states)
    batch = (jnp.asarray(X), jnp.asarray(Y))
    params, _, _, metrics = jax.vmap(step, in_axes=(None, None, 0, None, None))(
        PARAMS, STATE, stacked, batch, KEY)
    np.testing.assert_allclose(metrics["learning_rate"], [1e-2, 1e-3], rtol=1e-6)
    for i, opt_state in enumerate(states):
        single = step(PARAMS, STATE, opt_state, batch, KEY)[0]
        allclose(jax.tree.map(lambda a: a[i], params), single, rtol=1e-6, atol=1e-7)
