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


# --- seed 000: the likelihood of y_hat = 0.7 for each class -----------------------------
def test_seed000_likelihood_of_0_7_and_its_cross_entropy():
    # 000_07ae6197893fc57f.txt: "For class 1: P(y|x) = (0.7)^1 (1-0.7)^(1-1)",
    # "For class 0: P(y|x) = (0.7)^0 (1-0.7)^(1-0)", and L_CE = -log p(y|x):
    # -ln 0.7 = 0.3567 (y = 1) and -ln 0.3 = 1.2040 (y = 0).
    y_hat, y = jnp.array([0.7, 0.7]), jnp.array([1.0, 0.0])
    losses = fnn.losses.binary_cross_entropy(y_hat, y, reduction="none")
    np.testing.assert_allclose(losses, [0.3567, 1.2040], atol=5e-5)
    np.testing.assert_allclose(jnp.exp(-losses), [0.7 ** 1 * 0.3 ** 0, 0.7 ** 0 * 0.3 ** 1], rtol=1e-6)
    # The notes' binary cross-entropy is the average over the examples: L = -(1/N) sum [...].
    np.testing.assert_allclose(fnn.losses.binary_cross_entropy(y_hat, y), (0.3567 + 1.2040) / 2, atol=5e-5)
    # The same through the logit: logit(p) = ln(p / (1 - p)) = z  <=>  p = exp(z) / (1 + exp(z)).
    z = jnp.full(2, np.log(0.7 / 0.3), jnp.float32)
    np.testing.assert_allclose(fnn.activations.sigmoid(z), 0.7, rtol=1e-6)
    np.testing.assert_allclose(fnn.losses.binary_cross_entropy_with_logits(z, y, reduction="none"),
                               [0.3567, 1.2040], atol=5e-5)


# --- seed 001: combining two perceptrons' probabilities --------------------------------
def test_seed001_sigmoid_of_combined_probabilities():
    # 001_72ab88cb0d63ab81.txt: "without weight & bias": z = p1(y) + p2(y) = 0.8 + 0.7 = 1.5 > 1,
    # sigma(z) = 0.82 <= 1 (exactly 0.8176); "with weight & bias": z = 10(0.8) + 5(0.7) + 3.
    p = jnp.array([[0.8, 0.7]])
    np.testing.assert_allclose(fnn.activations.sigmoid(jnp.float32(1.5)), 0.82, atol=5e-3)   # as printed
    np.testing.assert_allclose(fnn.activations.sigmoid(jnp.float32(1.5)), 0.8176, atol=5e-5)
    model = fnn.Sequential([fnn.Dense(1), fnn.Activation("sigmoid")])
    unit = {"0": {"w": jnp.ones((2, 1)), "b": jnp.zeros(1)}, "1": {}}     # weights 1, bias 0
    np.testing.assert_allclose(model.apply(unit, {}, p)[0], [[0.8176]], atol=5e-5)
    weighted = {"0": {"w": jnp.array([[10.0], [5.0]]), "b": jnp.array([3.0])}, "1": {}}
    z, _ = model.layers[0].apply(weighted["0"], {}, p)
    np.testing.assert_allclose(z, [[14.5]], rtol=1e-6)                       # 8 + 3.5 + 3
    np.testing.assert_allclose(model.apply(weighted, {}, p)[0], [[1 / (1 + np.exp(-14.5))]], rtol=1e-6)


# --- seed 004: the softmax table --------------------------------------------------------
def test_seed004_softmax_table():
    # 004_6101e6ed116448c6.txt, "Feedforward output, y_i" -> "Softmax output, S(y)", rows
    # cat, dog, horse. The scan garbles the table: the logit rows are (5, 4, 2), (4, 2, 8),
    # (4, 4, 1); "95 45 9", "90 85 8" and the leading "0.20" are scanning noise.
    logits = jnp.array([[5.0, 4.0, 2.0], [4.0, 2.0, 8.0], [4.0, 4.0, 1.0]])
    table = np.array([[0.71, 0.26, 0.04], [0.02, 0.00, 0.98], [0.49, 0.49, 0.02]])
    probs = fnn.activations.softmax(logits)
    np.testing.assert_allclose(probs, table, atol=0.005)        # the notes' two digits
    np.testing.assert_array_equal(np.round(np.asarray(probs, np.float64), 2), table)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-6)


def test_seed004_dense_layer_shapes_200x4_times_4x5():
    # 004_6101e6ed116448c6.txt: "rows(m) Feature 200x4, 4x5; 5 neurons in my next layer -> 200x5";
    # and 001_72ab88cb0d63ab81.txt's count: weights = previous * current, bias = current.
    layer = fnn.Dense(5)
    x = jax.ShapeDtypeStruct((200, 4), jnp.float32)             # shapes only: nothing is computed
    params, _ = jax.eval_shape(lambda x: layer.init(jax.random.key(0), x), x)
    assert params["w"].shape == (4, 5) and params["b"].shape == (5,)
    assert jax.eval_shape(lambda p, x: layer.apply(p, {}, x)[0], params, x).shape == (200, 5)
    assert fnn.count_params(params) == 4 * 5 + 5


# --- seed 003: the softmax of z = 10, 20, ... and the vanishing gradient ------------------
def test_seed003_softmax_probabilities_total_one():
    # 003_bd2609bbfadc696f.txt: "for z1 = 10: e^10 / e^(10+20+30+40+50+70) will be probability.
    # Total will be 1." (the denominator is the sum of the e^z_j).
    z = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 70.0])
    probs = fnn.activations.softmax(jnp.asarray(z, jnp.float32))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probs[0], np.exp(10.0) / np.exp(z).sum(), rtol=1e-4)
    np.testing.assert_allclose(probs, np.exp(z - z.max()) / np.exp(z - z.max()).sum(), rtol=1e-4, atol=1e-30)


def _sigmoid_input_with_derivative(d):
    """The z >= 0 with sigma'(z) = sigma(z) (1 - sigma(z)) = d (0 < d <= 1/4), in numpy."""
    s = (1 + np.sqrt(1 - 4 * d)) / 2
    return np.log(s / (1 - s))


def test_seed003_vanishing_gradient_product_of_sigmoid_derivatives():
    # 003_bd2609bbfadc696f.txt: "The derivative curve of sigmoid function will be ranging between
    # 0 and 0.25 ... for eg: 0.25 x 0.15 x 0.10 x 0.05 x 0.02 = Small value" (= 3.75e-6).
    d = np.array([0.25, 0.15, 0.10, 0.05, 0.02])
    z = _sigmoid_input_with_derivative(d)
    dsig = jax.vmap(jax.grad(fnn.activations.sigmoid))
    derivs = dsig(jnp.asarray(z, jnp.float32))
    np.testing.assert_allclose(derivs, d, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.prod(np.asarray(derivs, np.float64)), 3.75e-6, rtol=1e-4)
    # sigma'(0) = 0.25 is the maximum: on a grid of |z| in [0.1, 8] sigma' stays below it.
    assert float(jax.grad(fnn.activations.sigmoid)(0.0)) == 0.25
    grid = jnp.asarray(np.concatenate([-np.arange(1, 81), np.arange(1, 81)]) / 10, jnp.float32)
    assert float(dsig(grid).max()) < 0.25
    np.testing.assert_allclose(dsig(grid).max(), 0.25 - 0.1 ** 2 / 16, rtol=1e-4)   # 1/4 - z^2/16 + ...
    # The same number is the gradient through five sigmoid neurons whose pre-activations are
    # those z (weights 1; bias_k = z_k - a_{k-1}): d a_5 / d x = prod_k sigma'(z_k).
    layers, params = [], {}
    previous = None
    for k, zk in enumerate(z):
        bias = 0.0 if previous is None else zk - 1 / (1 + np.exp(-previous))
        layers += [fnn.Dense(1), fnn.Activation("sigmoid")]
        params[str(2 * k)] = {"w": jnp.ones((1, 1)), "b": jnp.array([bias], jnp.float32)}
        params[str(2 * k + 1)] = {}
        previous = zk
    model = fnn.Sequential(layers)
    out = lambda x: model.apply(params, {}, x.reshape(1, 1))[0][0, 0]  # noqa: E731
    np.testing.assert_allclose(jax.jit(jax.grad(out))(jnp.float32(z[0])), 3.75e-6, rtol=1e-3)


# --- seed 003 (and 002): iterations per epoch --------------------------------------------
def test_seed003_iterations_per_epoch():
    # 003_bd2609bbfadc696f.txt: "Dataset = 1000 ... 1 Epoch = 1 iteration" (gradient descent on
    # all of it); "100 iterations, batch size = 10"; SGD passes the records one by one (1000
    # steps); "Suppose I have 100 records ... a batch of records for eg: 10" (10 steps); mini-batch
    # SGD: "1000000 of records, and batch size = 1000" (1000 steps).
    plan = fnn.train.epoch.plan
    assert plan(1000, 10, False) == (100, 10, 0)
    assert plan(1000, None, False) == (1, 1000, 0) == plan(1000, 1000, False)   # batch GD
    assert plan(1000, 1, False) == (1000, 1, 0)                                  # SGD
    assert plan(100, 10, False) == (10, 10, 0)
    assert plan(1_000_000, 1000, False) == (1000, 1000, 0)
    # 002_d1547338624e7a06.txt: "mini batch size m (Batch gradient descent)", "between 1 and m
    # (Mini batch gradient descent)" (its "size 0 (Stochastic ...)" is a slip for size 1).
    # One epoch of fit with batches of 10 does 100 optimizer updates (Adam's count).
    x = np.linspace(-1, 1, 2000, dtype=np.float32).reshape(1000, 2)
    result = fnn.fit(fnn.Dense(1), "mse", fnn.optim.adam(1e-2), (x, x.sum(1, keepdims=True)),
                     epochs=1, batch_size=10, key=jax.random.key(0), progress=False)
    assert int(result.opt_state[0].count) == 100


# --- seed 003: sparse categorical cross-entropy picks the largest probability -------------
@jax.jit
def _sparse_example(probs, second):
    return {
        "class": jnp.argmax(probs, axis=-1)[0],
        "accuracy_2": fnn.metrics.accuracy(probs, jnp.array([2])),
        "accuracy_1": fnn.metrics.accuracy(probs, jnp.array([1])),
        "categorical": fnn.losses.categorical_cross_entropy(probs, fnn.one_hot(jnp.array([2]), 3)),
        # log-probabilities are logits whose softmax is probs again: the sparse form gives -log 0.5.
        "sparse": fnn.losses.sparse_softmax_cross_entropy(jnp.log(probs), jnp.array([2])),
        "second_class": jnp.argmax(second, axis=-1)[0],
        "second_accuracy": fnn.metrics.accuracy(second, jnp.array([1])),
        "second_categorical": fnn.losses.categorical_cross_entropy(second, fnn.one_hot(jnp.array([1]), 5)),
    }


def test_seed003_sparse_categorical_prediction_and_loss():
    # 003_bd2609bbfadc696f.txt: "[0.2, 0.3, 0.5] -> 2nd Index -> o/p" and
    # "[0, 0.3, 0.1, 0.2, 0.2] -> 1st Index" (categories counted from 0). One jit: one compile.
    out = _sparse_example(jnp.array([[0.2, 0.3, 0.5]]), jnp.array([[0.0, 0.3, 0.1, 0.2, 0.2]]))
    assert int(out["class"]) == 2
    assert float(out["accuracy_2"]) == 1.0 and float(out["accuracy_1"]) == 0.0
    np.testing.assert_allclose(out["categorical"], -np.log(0.5), rtol=1e-6)
    np.testing.assert_allclose(out["sparse"], -np.log(0.5), rtol=1e-6)
    assert int(out["second_class"]) == 1 and float(out["second_accuracy"]) == 1.0
    np.testing.assert_allclose(out["second_categorical"], -np.log(0.3), rtol=1e-6)


# --- seeds 000 and 003: one-hot tables -----------------------------------------------------
def test_seed000_and_seed003_one_hot_tables():
    # 000_07ae6197893fc57f.txt: "4, 7, 2 - A (1, 0); 5, 6, 3 - B (0, 1)".
    np.testing.assert_array_equal(fnn.one_hot(jnp.array([0, 1]), 2), [[1, 0], [0, 1]])
    # 003_bd2609bbfadc696f.txt: Good, Bad, Neutral -> (1 0 0), (0 1 0), (0 0 1).
    np.testing.assert_array_equal(fnn.one_hot(jnp.array([0, 1, 2]), 3), np.eye(3))


# --- seed 003: leaky ReLU and PReLU ------------------------------------------------------
def test_seed003_leaky_relu_and_prelu_special_cases():
    # 003_bd2609bbfadc696f.txt: "f(x) = max(0.01x, x)"; PReLU f(y) = y if y > 0 else a y:
    # "if a_i = 0, f becomes ReLU; if a_i > 0 (0.01), f becomes Leaky ReLU".
    x = jnp.array([-3.0, -0.5, 0.0, 2.0])
    np.testing.assert_allclose(fnn.activations.leaky_relu(x), np.maximum(0.01 * np.asarray(x), x), rtol=1e-6)
    np.testing.assert_allclose(fnn.activations.prelu(x, jnp.float32(0.0)), fnn.activations.relu(x))
    np.testing.assert_allclose(fnn.activations.prelu(x, jnp.float32(0.01)), fnn.activations.leaky_relu(x),
                               rtol=1e-6)


# --- seed 002: L2 regularisation's cost term and gradient ---------------------------------
def test_seed002_l2_cost_term_and_its_gradient():
    # 002_d1547338624e7a06.txt: "J(w,b) = (1/m) Sum(L) + (lambda/2m) Sum(||W[l]||^2)" and
    # "dw[l] = (from back propagation) + lambda/m * w[l]". fnn.regularizers.l2(params, scale)
    # is scale * sum w^2, so scale = lambda / (2m).
    lam, m = 0.7, 8
    params = {"w": jnp.array([[0.5, -1.0], [2.0, 0.25]])}
    term = lambda p: fnn.regularizers.l2(p, lam / (2 * m))  # noqa: E731
    w = np.asarray(params["w"], np.float64)
    np.testing.assert_allclose(term(params), lam / (2 * m) * (w ** 2).sum(), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(term)(params)["w"], lam / m * w, rtol=1e-6)


# --- seed 002: the optimizers' recommended defaults -------------------------------------
def test_seed002_adam_and_momentum_defaults():
    # 002_d1547338624e7a06.txt: "beta1: ... 0.9", "beta2: ... 0.999", "epsilon: 10^-8";
    # momentum "beta = 0.9 is very common".
    adam_state = fnn.optim.adam().init(jnp.zeros(1))[0]
    np.testing.assert_allclose([adam_state.b1, adam_state.b2, adam_state.eps], [0.9, 0.999, 1e-8], rtol=1e-6)
    np.testing.assert_allclose(fnn.optim.momentum().init(jnp.zeros(1))[0].beta, 0.9, rtol=1e-6)
