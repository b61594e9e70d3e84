"""The lecture notes' worked examples (shared/seeds), reproduced with fnn.

Every expected number is either printed in the notes or written out here in
numpy from the notes' hand-derived formulas.
"""

import jax
import jax.numpy as jnp
import numpy as np

import fnn


# --- seed 000: one logistic-regression step --------------------------------------------
X0, W0, B0, Y0 = np.array([5.0, 3.0]), np.array([0.02, 0.09]), 0.01, 1.0


def _logistic_loss(w, b, x, y):
    y_hat = fnn.activations.sigmoid(jnp.dot(x, w) + b)
    return fnn.losses.binary_cross_entropy(y_hat[None], y[None])


def test_seed000_logistic_regression_forward_loss_gradients_and_update():
    x, w, b, y = (jnp.asarray(v, jnp.float32) for v in (X0, W0, B0, Y0))
    z = jnp.dot(x, w) + b
    np.testing.assert_allclose(z, 0.38, rtol=1e-6)                          # z = 0.38
    np.testing.assert_allclose(fnn.activations.sigmoid(z), 0.5939, atol=5e-5)  # y_hat = 0.5939
    loss, (dw, db) = jax.value_and_grad(_logistic_loss, argnums=(0, 1))(w, b, x, y)
    np.testing.assert_allclose(loss, 0.5210, atol=1e-4)    # notes: 0.5210 (exact -ln(sigma(0.38)) = 0.52109)
    np.testing.assert_allclose(loss, -np.log(1 / (1 + np.exp(-0.38))), rtol=1e-5)
    # dL/dw_i = (a - y) x_i, dL/db = a - y: the notes' -2.03, -1.218, -0.4061.
    np.testing.assert_allclose(dw, [-2.03, -1.218], atol=1e-3)
    np.testing.assert_allclose(db, -0.4061, atol=1e-4)
    a = 1 / (1 + np.exp(-0.38))
    np.testing.assert_allclose(dw, (a - 1) * X0, rtol=1e-5)
    # The logits form gives the same gradients.
    logit_loss = lambda w: fnn.losses.binary_cross_entropy_with_logits((jnp.dot(x, w) + b)[None], y[None])  # noqa: E731
    np.testing.assert_allclose(jax.grad(logit_loss)(w), dw, rtol=1e-5)
    # Update with eta = 0.005: w1 = 0.02 - 0.005 * (-2.03) ~= 0.03.
    w_new = w - 0.005 * dw
    np.testing.assert_allclose(w_new[0], 0.03, atol=2e-4)
    np.testing.assert_allclose(w_new[0], 0.02 - 0.005 * (a - 1) * 5, rtol=1e-5)
    assert float(_logistic_loss(w_new, b - 0.005 * db, x, y)) < float(loss)  # the loss went down


def test_seed000_as_a_one_neuron_fnn_model():
    model = fnn.Sequential([fnn.Dense(1), fnn.Activation("sigmoid")])
    params = {"0": {"w": jnp.asarray(W0[:, None], jnp.float32), "b": jnp.array([B0], jnp.float32)}, "1": {}}

    def loss(p):
        y_hat, _ = model.apply(p, {}, jnp.asarray(X0[None], jnp.float32))
        return fnn.losses.binary_cross_entropy(y_hat, jnp.array([[Y0]]))

    grads = jax.grad(loss)(params)
    np.testing.assert_allclose(grads["0"]["w"][:, 0], [-2.03, -1.218], atol=1e-3)
    np.testing.assert_allclose(grads["0"]["b"], [-0.4061], atol=1e-4)


# --- seed 001: a 2-2-1 network with linear activations, L = (y - y_hat)^2 ---------------
def test_seed001_nine_parameters_and_hand_derived_gradients():
    model = fnn.Sequential([fnn.Dense(2), fnn.Dense(1)])      # linear activation
    x = np.array([3.75, 80.0])                                  # CGPA, IQ of the notes' table
    y = 8.0                                                     # salary
    W1 = np.array([[0.1, 0.2], [0.3, 0.4]])                     # W1[i-1, j-1] = W'_ij (i: input)
    b1 = np.array([0.01, 0.02])                                 # b_11, b_12
    W2 = np.array([[0.5], [0.6]])                               # W''_11, W''_21
    b2 = np.array([0.03])                                       # b_21
    params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32),
                          {"0": {"w": W1, "b": b1}, "1": {"w": W2, "b": b2}})
    assert fnn.count_params(params) == 9

    def loss(p):
        y_hat, _ = model.apply(p, {}, jnp.asarray(x[None], jnp.float32))
        return fnn.losses.mse(y_hat, jnp.array([[y]], jnp.float32))  # = (y - y_hat)^2 for one example

    grads = jax.grad(loss)(params)
    # Forward pass of the notes: O_11, O_12, then y_hat = O_21.
    o11 = x[0] * W1[0, 0] + x[1] * W1[1, 0] + b1[0]
    o12 = x[0] * W1[0, 1] + x[1] * W1[1, 1] + b1[1]
    y_hat = o11 * W2[0, 0] + o12 * W2[1, 0] + b2[0]
    d = -2 * (y - y_hat)                                        # dL/dy_hat
    expected = {
        ("1", "w", 0, 0): d * o11,                  # (i)    dL/dW''_11
        ("1", "w", 1, 0): d * o12,                  # (ii)   dL/dW''_21
        ("1", "b", 0): d,                           # (iii)  dL/db_21
        ("0", "b", 0): d * W2[0, 0],                # (iv)   dL/db_11
        ("0", "b", 1): d * W2[1, 0],                # (v)    dL/db_12
        ("0", "w", 0, 0): d * W2[0, 0] * x[0],      # (vi)   dL/dW'_11
        ("0", "w", 0, 1): d * W2[1, 0] * x[0],      # (vii)  dL/dW'_12
        ("0", "w", 1, 0): d * W2[0, 0] * x[1],      # (viii) dL/dW'_21
        ("0", "w", 1, 1): d * W2[1, 0] * x[1],      # (ix)   dL/dW'_22
    }
    assert len(expected) == 9
    for (layer, name, *index), value in expected.items():
        np.testing.assert_allclose(grads[layer][name][tuple(index)], value, rtol=1e-5)


def test_seed001_sigmoid_forward_pass():
    layer = fnn.Dense(2)
    params = {"w": jnp.array([[0.2, 0.3], [0.2, 0.3]]), "b": jnp.zeros(2)}
    z, _ = layer.apply(params, {}, jnp.array([[0.35, 0.7]]))
    np.testing.assert_allclose(z[0], [0.21, 0.315], rtol=1e-6)
    out = fnn.activations.sigmoid(z)[0]
    np.testing.assert_allclose(out[0], 0.55, atol=5e-3)    # notes: sigma(0.21) = 0.55
    np.testing.assert_allclose(out[1], 0.578, atol=5e-4)   # notes write 0.579; 1/(1+e^-0.315) = 0.5781
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-np.array([0.21, 0.315]))), rtol=1e-6)


# --- seed 003: softmax with K = 2 is the sigmoid ---------------------------------------
def test_seed003_softmax_with_two_classes_is_sigmoid():
    rng = np.random.default_rng(3)
    theta0, theta1, x = rng.normal(size=4), rng.normal(size=4), rng.normal(size=(5, 4))
    logits = jnp.asarray(np.stack([x @ theta0, x @ theta1], axis=1), jnp.float32)
    beta = theta1 - theta0                                    # beta = -(theta0 - theta1)
    p1 = 1 / (1 + np.exp(-(x @ beta)))
    np.testing.assert_allclose(fnn.activations.softmax(logits)[:, 1], p1, rtol=1e-5)
    np.testing.assert_allclose(fnn.activations.softmax(logits)[:, 0], 1 - p1, rtol=1e-5)
    # and the two-class cross-entropy is the binary cross-entropy of the logit difference.
    y = rng.integers(0, 2, 5)
    np.testing.assert_allclose(
        fnn.losses.sparse_softmax_cross_entropy(logits, jnp.asarray(y)),
        fnn.losses.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], jnp.asarray(y, jnp.float32)),
        rtol=1e-5)


# --- seed 002: softmax regression dZ = Y_hat - Y, logistic regression dw = X (A - Y)^T / m --
def test_seed002_softmax_regression_gradient_is_y_hat_minus_y():
    rng = np.random.default_rng(4)
    m, n_x, k = 6, 3, 4
    x = rng.normal(size=(m, n_x))
    labels = rng.integers(0, k, m)
    y = np.eye(k)[labels]
    z = rng.normal(size=(m, k))
    e = np.exp(z - z.max(1, keepdims=True))
    y_hat = e / e.sum(1, keepdims=True)
    dz = jax.grad(fnn.losses.softmax_cross_entropy)(jnp.asarray(z, jnp.float32), jnp.asarray(y, jnp.float32))
    np.testing.assert_allclose(dz, (y_hat - y) / m, rtol=1e-5, atol=1e-7)   # mean: divided by m
    dz_sum = jax.grad(fnn.losses.sparse_softmax_cross_entropy)(
        jnp.asarray(z, jnp.float32), jnp.asarray(labels), reduction="sum")
    np.testing.assert_allclose(dz_sum, y_hat - y, rtol=1e-5, atol=1e-7)
    # Through a Dense layer: dW = X^T dZ / m and db = sum(dZ) / m (the notes' layout transposed).
    layer = fnn.Dense(k)
    params = {"w": jnp.asarray(rng.normal(size=(n_x, k)), jnp.float32), "b": jnp.zeros(k)}

    def cost(p):
        logits, _ = layer.apply(p, {}, jnp.asarray(x, jnp.float32))
        return fnn.losses.softmax_cross_entropy(logits, jnp.asarray(y, jnp.float32))

    zz = x @ np.asarray(params["w"], np.float64)
    ee = np.exp(zz - zz.max(1, keepdims=True))
    dzz = ee / ee.sum(1, keepdims=True) - y
    grads = jax.grad(cost)(params)
    np.testing.assert_allclose(grads["w"], x.T @ dzz / m, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads["b"], dzz.sum(0) / m, rtol=1e-4, atol=1e-6)


def test_seed002_logistic_regression_vectorised_gradients():
    rng = np.random.default_rng(5)
    m, n_x = 8, 3
    x, y = rng.normal(size=(m, n_x)), rng.integers(0, 2, m).astype(float)
    w, b = rng.normal(size=n_x), 0.1

    def cost(w, b):
        a = fnn.activations.sigmoid(jnp.asarray(x, jnp.float32) @ w + b)
        return fnn.losses.binary_cross_entropy(a, jnp.asarray(y, jnp.float32))   # J = (1/m) sum L

    dw, db = jax.grad(cost, argnums=(0, 1))(jnp.asarray(w, jnp.float32), jnp.float32(b))
    a = 1 / (1 + np.exp(-(x @ w + b)))
    np.testing.assert_allclose(dw, x.T @ (a - y) / m, rtol=1e-4, atol=1e-6)     # dJ/dw = X (A - Y)^T / m
    np.testing.assert_allclose(db, np.sum(a - y) / m, rtol=1e-4, atol=1e-6)     # dJ/db = sum(a - y) / m
