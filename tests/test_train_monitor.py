"""fit(monitor=fnn.train.Monitor()) against hand-computed norms and forced problems, and
fnn.train.diagnose on runs that have (and do not have) the problems the notes list."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

X = np.asarray(jax.random.normal(jax.random.key(0), (32, 3)))
Y = (X[:, :1] * X[:, 1:2] + 0.1 * X[:, 2:]).astype(np.float32)
MODEL = fnn.Sequential([fnn.Dense(4), fnn.Activation("relu"), fnn.Dense(1)])
PARAMS, STATE = MODEL.init(jax.random.key(1), X)
FIT = dict(epochs=1, key=jax.random.key(2), progress=False)


def test_one_step_epoch_norms_equal_jax_grad_by_hand():
    result = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.1), (X, Y), batch_size=None, params=PARAMS,
                     state=STATE, monitor=fnn.train.Monitor(), **FIT)
    loss = lambda p: jnp.mean((MODEL.apply(p, STATE, X)[0] - Y) ** 2)
    grads = jax.grad(loss)(PARAMS)
    norm = lambda tree: float(np.sqrt(sum(np.sum(np.square(np.asarray(a, np.float64)))
                                          for a in jax.tree.leaves(tree))))
    h = result.history
    for layer in ("0", "2"):
        np.testing.assert_allclose(h[f"grad_norm/{layer}"][0], norm(grads[layer]), rtol=1e-5)
        np.testing.assert_allclose(h[f"param_norm/{layer}"][0], norm(result.params[layer]),
                                   rtol=1e-5)
        np.testing.assert_allclose(h[f"update_ratio/{layer}"][0],
                                   0.1 * norm(grads[layer]) / norm(result.params[layer]),
                                   rtol=1e-5)
    hidden = np.maximum(np.asarray(X) @ np.asarray(PARAMS["0"]["w"]) + np.asarray(
        PARAMS["0"]["b"]), 0)
    np.testing.assert_allclose(h["activation_mean/1"][0], hidden.mean(), rtol=1e-5)
    np.testing.assert_allclose(h["activation_std/1"][0], hidden.std(), rtol=1e-4)
    assert h["dead_units/1"][0] == np.sum(hidden.max(axis=0) == 0)
    assert "grad_norm/1" not in h            # an activation layer has no parameters


def test_a_unit_forced_dead_is_counted_and_training_is_unchanged():
    params = jax.tree.map(jnp.array, PARAMS)
    params["0"]["w"] = params["0"]["w"].at[:, 2].set(0.0)
    params["0"]["b"] = params["0"]["b"].at[2].set(-5.0)      # unit 2: relu(-5) = 0 always
    x = np.abs(X)
    params["0"]["w"] = params["0"]["w"].at[:, [0, 1, 3]].set(1.0)   # the others always active
    kwargs = dict(batch_size=8, params=params, state=STATE, **{**FIT, "epochs": 2})
    watched = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.01), (x, Y), monitor=fnn.train.Monitor(),
                      **kwargs)
    assert watched.history["dead_units/1"] == [1.0, 1.0]
    assert watched.history["dead_fraction/1"] == [0.25, 0.25]
    plain = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.01), (x, Y), **kwargs)
    assert plain.history["loss"] == watched.history["loss"]
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(watched.params)):
        np.testing.assert_array_equal(a, b)
    assert not any("/" in name for name in plain.history)


def test_every_measures_fewer_steps_and_streamed_data_gives_the_same_numbers():
    monitor = fnn.train.Monitor(every=2)
    kwargs = dict(batch_size=8, params=PARAMS, state=STATE, shuffle=False, **FIT)
    in_memory = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.05), (X, Y), monitor=monitor, **kwargs)
    batches = [(X[i:i + 8], Y[i:i + 8]) for i in range(0, 32, 8)]
    streamed = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.05), batches, monitor=monitor, **kwargs)
    for name, values in in_memory.history.items():
        np.testing.assert_allclose(streamed.history[name], values, rtol=1e-6, err_msg=name)
    every_step = fnn.fit(MODEL, "mse", fnn.optim.sgd(0.05), (X, Y), monitor=fnn.train.Monitor(),
                         **kwargs)
    assert every_step.history["grad_norm/0"] != in_memory.history["grad_norm/0"]


def _deep(activation, init):
    layers = []
    for _ in range(9):
        layers += [fnn.Dense(16, w_init=init), fnn.Activation(activation)]
    return fnn.Sequential(layers + [fnn.Dense(1, w_init=init)])


def test_ten_sigmoid_layers_vanish_and_relu_with_he_init_does_not():
    x = np.asarray(jax.random.normal(jax.random.key(3), (64, 8)))
    y = (np.sin(x[:, :1]) + x[:, 1:2]).astype(np.float32)
    runs = {}
    for activation, init in (("sigmoid", "glorot_uniform"), ("relu", "he_normal")):
        result = fnn.fit(_deep(activation, init), "mse", fnn.optim.sgd(0.05), (x, y),
                         batch_size=None, monitor=fnn.train.Monitor(),
                         **{**FIT, "epochs": 3})
        runs[activation] = fnn.train.diagnose(result)
    assert "vanishing_gradients" in runs["sigmoid"].kinds()
    assert "0" in runs["sigmoid"][runs["sigmoid"].kinds().index("vanishing_gradients")].layers
    assert "vanishing_gradients" not in runs["relu"].kinds()
    assert "ReLU instead of sigmoid" in str(runs["sigmoid"])


def test_saturated_tanh_and_an_overfitting_run_are_diagnosed():
    model = fnn.Sequential([fnn.Dense(8, w_init=fnn.initializers.normal(10.0)),
                            fnn.Activation("tanh"), fnn.Dense(1)])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 6)).astype(np.float32)
    y = rng.normal(size=(24, 1)).astype(np.float32)                  # noise: only memorised
    xv = rng.normal(size=(24, 6)).astype(np.float32)
    yv = rng.normal(size=(24, 1)).astype(np.float32)
    result = fnn.fit(model, "mse", fnn.optim.adam(0.03), (x, y), batch_size=None,
                     validation_data=(xv, yv), monitor=fnn.train.Monitor(),
                     **{**FIT, "epochs": 60})
    found = fnn.train.diagnose(result)
    assert {"saturation", "overfitting"} <= set(found.kinds()), str(found)
    assert found[found.kinds().index("saturation")].layers == ("1",)
    assert "early stopping" in str(found)


def test_plot_monitor_and_bad_monitor_arguments():
    with pytest.raises(TypeError, match="fnn.train.Monitor.*EarlyStopping\\(monitor"):
        fnn.fit(MODEL, "mse", fnn.optim.sgd(0.1), (X, Y), batch_size=None, monitor="val_loss",
                **FIT)
    with pytest.raises(ValueError, match="every must be"):
        fnn.train.Monitor(every=0)
    with pytest.raises(ValueError, match="no monitor numbers"):
        fnn.train.plot_monitor({"loss": [1.0]})
    plt = pytest.importorskip("matplotlib.pyplot")
    history = {"grad_norm/0": [1.0, 0.5], "grad_norm/2": [2.0, 1.0], "dead_fraction/1": [0, .5]}
    plt.close(fnn.train.plot_monitor(history))
    assert str(fnn.train.diagnose({"loss": [1.0, 0.5]})) == (
        "diagnose: no problem found in the history")
