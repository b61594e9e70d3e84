"""The pure epoch: metrics on the device, the shuffle and shuffle=False."""


import jax
import numpy as np
import jax.numpy as jnp

import fnn
from train_setup import KEY, LOSS, MODEL, PARAMS, STATE, X, Y, allclose, fit, make_step


def test_make_epoch_reports_metrics_on_device():
    opt = fnn.optim.adam(0.01)
    epoch = fnn.train.make_epoch(MODEL, LOSS, opt, batch_size=8, metrics=["accuracy"])
    _, _, _, metrics = epoch(PARAMS, STATE, opt.init(PARAMS), (X, Y), KEY)
    assert all(isinstance(v, jax.Array) for v in metrics.values())
    assert set(metrics) == {"loss", "accuracy", "learning_rate", "nonfinite_step",
                            "params_finite"}
    assert 0.0 <= float(metrics["accuracy"]) <= 1.0 and int(metrics["nonfinite_step"]) == -1
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(PARAMS))  # CPU: no donation
    donating = fnn.train.make_epoch(MODEL, LOSS, opt, batch_size=8, metrics=["accuracy"],
                                    donate=True)
    params = jax.tree.map(jnp.copy, PARAMS)
    out = donating(params, STATE, opt.init(params), (X, Y), KEY)
    assert all(leaf.is_deleted() for leaf in jax.tree.leaves(params))
    allclose(out[0], epoch(PARAMS, STATE, opt.init(PARAMS), (X, Y), KEY)[0], rtol=0, atol=0)


def test_shuffle_false_keeps_the_data_order_and_matches_a_hand_written_loop():
    # Every step sees the next contiguous slice; the result equals steps on x[0:8], x[8:16], ...
    opt = fnn.optim.sgd(0.1)
    result = fit(optimizer=opt, shuffle=False, epochs=1)
    opt_state = opt.init(PARAMS)
    step = make_step(MODEL, LOSS, opt)
    loop_key = jax.random.split(KEY)[1]
    steps_key = jax.random.split(jax.random.fold_in(loop_key, 0))[1]
    params, state = MODEL.init(jax.random.split(KEY)[0], X)
    for i, start in enumerate(range(0, len(X), 8)):
        params, state, opt_state, _ = step(params, state, opt_state,
                                           (X[start:start + 8], Y[start:start + 8]),
                                           jax.random.fold_in(steps_key, i))
    allclose(result.params, params, rtol=1e-6, atol=1e-7)
    shuffled = fit(optimizer=opt, epochs=1)
    assert not np.allclose(shuffled.params["0"]["w"], result.params["0"]["w"])
