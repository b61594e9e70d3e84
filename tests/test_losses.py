"""fnn.losses against numpy float64 references and finite differences; reductions;
stability for saturated logits; strict shape / label errors; get()."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import losses as L

RNG = np.random.default_rng(0)
N, K = 4, 3
REG_P, REG_T = RNG.normal(size=(N, K)) * 2, RNG.normal(size=(N, K))
PROBS = RNG.uniform(0.05, 0.95, size=(N, K))
BIN_T = RNG.integers(0, 2, size=(N, K)).astype(float)
LOGITS = RNG.normal(size=(N, K)) * 3
LABELS = np.array([0, 2, 1, 2])
ONE_HOT = np.eye(K)[LABELS]
SOFTMAX_P = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _log_softmax(z):
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _huber(e, d=1.0):
    a = np.abs(e)
    return np.where(a <= d, 0.5 * e**2, d * a - 0.5 * d**2)


# name -> (per-example numpy reference, predictions, targets); written from the notes' equations.
CASES = {
    "mse": (lambda p, t: ((p - t) ** 2).mean(1), REG_P, REG_T),
    "mae": (lambda p, t: np.abs(p - t).mean(1), REG_P, REG_T),
    "huber": (lambda p, t: _huber(p - t).mean(1), REG_P, REG_T),
    "binary_cross_entropy": (
        lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(1), PROBS, BIN_T),
    "binary_cross_entropy_with_logits": (
        lambda z, t: -(t * np.log(_sig(z)) + (1 - t) * np.log(1 - _sig(z))).sum(1), LOGITS, BIN_T),
    "categorical_cross_entropy": (lambda p, t: -(t * np.log(p)).sum(1), SOFTMAX_P, ONE_HOT),
    "softmax_cross_entropy": (lambda z, t: -(t * _log_softmax(z)).sum(1), LOGITS, ONE_HOT),
    "sparse_softmax_cross_entropy": (
        lambda z, y: -_log_softmax(z)[np.arange(len(y)), y], LOGITS, LABELS),
}


def _f32(x):
    return jnp.asarray(x, jnp.int32 if np.issubdtype(np.asarray(x).dtype, np.integer) else jnp.float32)


def _fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name", sorted(CASES))
def test_reductions_and_gradient_against_numpy(name):
    ref, p, t = CASES[name]
    loss = L.get(name)
    per = ref(p, t)
    none = loss(_f32(p), _f32(t), reduction="none")
    assert none.shape == (N,)
    np.testing.assert_allclose(none, per, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss(_f32(p), _f32(t)), per.mean(), rtol=1e-5)
    np.testing.assert_allclose(loss(_f32(p), _f32(t), reduction="sum"), per.sum(), rtol=1e-5)
    grad = jax.grad(loss)(_f32(p), _f32(t))
    np.testing.assert_allclose(grad, _fd_grad(lambda q: ref(q, t).mean(), p), rtol=2e-4, atol=1e-6)


def test_rmse_is_sqrt_after_the_mse_reduction():
    per = ((REG_P - REG_T) ** 2).mean(1)
    p, t = _f32(REG_P), _f32(REG_T)
    np.testing.assert_allclose(L.rmse(p, t), np.sqrt(per.mean()), rtol=1e-6)
    np.testing.assert_allclose(L.rmse(p, t, reduction="sum"), np.sqrt(per.sum()), rtol=1e-6)
    np.testing.assert_allclose(L.rmse(p, t, reduction="none"), np.sqrt(per), rtol=1e-6)
    ref = lambda q: np.sqrt(((q - REG_T) ** 2).mean())  # noqa: E731
    np.testing.assert_allclose(jax.grad(L.rmse)(p, t), _fd_grad(ref, REG_P), rtol=2e-4, atol=1e-6)
    # A perfect fit: rmse 0 and gradient 0 (not NaN).
    g = jax.grad(L.rmse)(t, t)
    assert float(L.rmse(t, t)) == 0.0 and np.all(g == 0)


def test_one_dimensional_inputs_are_one_example_per_element():
    p, t = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, 0.0, 0.0])
    np.testing.assert_allclose(L.mse(p, t, reduction="none"), [1.0, 4.0, 0.25])
    np.testing.assert_allclose(L.rmse(p, t, reduction="none"), [1.0, 2.0, 0.5])
    np.testing.assert_allclose(L.huber(p, t, delta=0.6, reduction="none"),
                               _huber(np.array([1.0, -2.0, 0.5]), 0.6), rtol=1e-6)
    for delta in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"huber: delta must be > 0, got {delta}"):
            L.huber(p, t, delta=delta)


def test_class_axis_is_last_and_other_axes_are_batch():
    z = _f32(RNG.normal(size=(2, 3, K)))
    y = jnp.array([[0, 1, 2], [2, 2, 0]])
    sparse = L.sparse_softmax_cross_entropy(z, y, reduction="none")
    assert sparse.shape == (2, 3)
    onehot = jnp.asarray(np.eye(K)[np.asarray(y)], jnp.float32)
    np.testing.assert_allclose(L.softmax_cross_entropy(z, onehot, reduction="none"), sparse, rtol=1e-6)
    np.testing.assert_allclose(L.sparse_softmax_cross_entropy(z, y), np.asarray(sparse).mean(), rtol=1e-6)


def test_logit_forms_equal_probability_forms():
    z = _f32(LOGITS)
    np.testing.assert_allclose(L.binary_cross_entropy_with_logits(z, _f32(BIN_T)),
                               L.binary_cross_entropy(jax.nn.sigmoid(z), _f32(BIN_T)), rtol=1e-5)
    np.testing.assert_allclose(L.softmax_cross_entropy(z, _f32(ONE_HOT)),
                               L.categorical_cross_entropy(jax.nn.softmax(z), _f32(ONE_HOT)), rtol=1e-5)


def test_bce_with_logits_gradient_is_sigmoid_minus_y_even_at_zero():
    z, y = jnp.array([0.0, 0.0, 2.0]), jnp.array([1.0, 0.0, 1.0])
    g = jax.grad(L.binary_cross_entropy_with_logits)(z, y, reduction="sum")
    np.testing.assert_allclose(g, _sig(np.array([0.0, 0.0, 2.0])) - np.array([1.0, 0.0, 1.0]), rtol=1e-6)


def test_saturated_logits_give_finite_values_and_gradients():
    z = jnp.array([[1e4, -1e4], [-1e4, 1e4]], jnp.float32)
    right, wrong = jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.array([[0.0, 1.0], [1.0, 0.0]])
    # Binary (each column an independent label): exact values 0 (right) and 2e4 (wrong).
    bce = L.binary_cross_entropy_with_logits
    assert float(bce(z, right, reduction="sum")) == 0.0
    np.testing.assert_allclose(bce(z, wrong, reduction="none"), [2e4, 2e4])
    np.testing.assert_allclose(jax.grad(bce)(z, wrong, reduction="sum"), right - wrong)
    # Softmax: dL/dz = softmax(z) - y.
    np.testing.assert_allclose(L.softmax_cross_entropy(z, wrong, reduction="none"), [2e4, 2e4])
    np.testing.assert_allclose(jax.grad(L.softmax_cross_entropy)(z, wrong, reduction="sum"), right - wrong)
    sparse = L.sparse_softmax_cross_entropy
    np.testing.assert_allclose(sparse(z, jnp.array([1, 0]), reduction="none"), [2e4, 2e4])
    assert float(sparse(z, jnp.array([0, 1]))) == 0.0
    np.testing.assert_allclose(jax.grad(sparse)(z, jnp.array([1, 0]), reduction="sum"), right - wrong)
    np.testing.assert_allclose(L.binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0])),
                               -np.log(1e-7), rtol=1e-3)

    @jax.jit
    def values_and_grads(v):
        fns = [lambda v: L.binary_cross_entropy(jax.nn.sigmoid(v), wrong),  # clipped probabilities
               lambda v: L.categorical_cross_entropy(jax.nn.softmax(v), wrong)]
        fns += [lambda v, f=f: f(v, wrong) for f in (L.mse, L.mae, L.huber, L.rmse)]  # huge errors
        return [jax.value_and_grad(f)(v) for f in fns]

    for value, grad in values_and_grads(z):
        assert np.isfinite(float(value)) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", sorted(CASES) + ["rmse"])
def test_shape_mismatch_names_loss_and_shapes(name):
    loss = L.get(name)
    if name == "sparse_softmax_cross_entropy":
        with pytest.raises(ValueError, match=r"sparse_softmax_cross_entropy: targets shape \(4, 1\).*\(4, 3\)"):
            loss(jnp.zeros((4, 3)), jnp.zeros((4, 1), jnp.int32))
        return
    with pytest.raises(ValueError, match=rf"{name}: predictions shape \(4,\) and targets shape \(4, 1\) differ"):
        loss(jnp.zeros(4), jnp.zeros((4, 1)))
    with pytest.raises(ValueError, match=rf"{name}: unknown reduction 'avg'"):
        loss(jnp.zeros((4, 2)), jnp.zeros((4, 2)), reduction="avg")


def test_sparse_label_checks():
    z = jnp.zeros((3, 4))
    f = L.sparse_softmax_cross_entropy
    with pytest.raises(TypeError, match="sparse_softmax_cross_entropy: labels must be integers"):
        f(z, jnp.array([0.0, 1.0, 2.0]))
    for labels in (np.array([0, 4, 1]), jnp.array([0, 1, -1]), [0, 1, 7]):
        with pytest.raises(ValueError, match=r"sparse_softmax_cross_entropy: labels must lie in \[0, 4\)"):
            f(z, labels)
    with pytest.raises(ValueError, match="unknown reduction"):
        f(z, jnp.array([0, 1, 2]), reduction="batch")
    # Under jit labels cannot be checked: an out-of-range label gives loss 0, no NaN.
    per = jax.jit(f, static_argnames="reduction")(z, jnp.array([0, 9, -2]), reduction="none")
    np.testing.assert_allclose(per, [np.log(4.0), 0.0, 0.0], rtol=1e-6)


def test_jit_vmap_and_no_recompilation():
    traces = []

    @jax.jit
    def all_losses(p, t, z, y):
        traces.append(1)
        return jnp.stack([L.mse(p, t), L.mae(p, t), L.rmse(p, t), L.huber(p, t, delta=0.5),
                          L.softmax_cross_entropy(z, jax.nn.one_hot(y, K)),
                          L.sparse_softmax_cross_entropy(z, y)])

    args = (_f32(REG_P), _f32(REG_T), _f32(LOGITS), _f32(LABELS))
    e = REG_P - REG_T
    sparse = CASES["sparse_softmax_cross_entropy"][0](LOGITS, LABELS).mean()
    expected = [(e**2).mean(), np.abs(e).mean(), np.sqrt((e**2).mean()), _huber(e, 0.5).mean(),
                sparse, sparse]
    np.testing.assert_allclose(all_losses(*args), expected, rtol=1e-5)
    all_losses(args[0] + 1, *args[1:])
    assert len(traces) == 1
    # vmap over a leading "model" axis: one loss per model.
    stacked = jnp.stack([args[2], 2 * args[2]])
    per_model = jax.vmap(L.sparse_softmax_cross_entropy, in_axes=(0, None))(stacked, args[3])
    np.testing.assert_allclose(per_model[1], L.sparse_softmax_cross_entropy(stacked[1], args[3]), rtol=1e-6)


def test_half_precision_predictions_are_computed_in_float32():
    z = jnp.asarray(LOGITS, jnp.bfloat16)
    out = L.sparse_softmax_cross_entropy(z, jnp.asarray(LABELS))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, CASES["sparse_softmax_cross_entropy"][0](
        np.asarray(z, np.float64), LABELS).mean(), rtol=1e-5)
    assert L.mse(jnp.ones(2, jnp.float16), jnp.zeros(2, jnp.int32)).dtype == jnp.float32


def test_get_names_aliases_and_errors():
    assert L.get("MSE") is L.mse and L.get("mean_squared_error") is L.mse
    assert L.get("bce") is L.binary_cross_entropy
    assert L.get("Binary-Cross-Entropy-With-Logits") is L.binary_cross_entropy_with_logits
    assert L.get("categorical_crossentropy") is L.categorical_cross_entropy
    assert L.get(L.huber) is L.huber
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*known names:.*mse.*softmax_cross_entropy"):
        L.get("hinge")
    with pytest.raises(TypeError, match="losses.get"):
        L.get(1.0)


def test_output_kind_of_every_loss_and_of_declared_user_losses():
    import functools

    kinds = {"binary_cross_entropy_with_logits": "logits", "softmax_cross_entropy": "logits",
             "sparse_softmax_cross_entropy": "logits", "binary_cross_entropy": "probabilities",
             "categorical_cross_entropy": "probabilities", "mse": None, "mae": None,
             "rmse": None, "huber": None}
    assert set(kinds) == set(L._REGISTRY)   # a new loss must be given its kind here
    for name, kind in kinds.items():
        assert L.output_kind(name) == kind and L.output_kind(L.get(name)) == kind, name
    assert L.output_kind("BCE-with-logits") == "logits" and L.output_kind("cce") == "probabilities"
    assert L.output_kind(functools.partial(L.binary_cross_entropy_with_logits, reduction="sum")) == "logits"
    assert L.output_kind(functools.partial(L.huber, delta=2.0)) is None

    def user_loss(z, y):
        return L.binary_cross_entropy_with_logits(z, y)

    assert L.output_kind(user_loss) is None            # undeclared: unknown, never guessed
    user_loss.output_kind = "probabilities"
    assert L.output_kind(user_loss) == "probabilities"
    assert L.output_kind(functools.partial(user_loss)) == "probabilities"
    user_loss.output_kind = "logit"
    with pytest.raises(ValueError, match=r"loss user_loss declares output_kind='logit'; expected "
                                         r"'logits', 'probabilities' or None"):
        L.output_kind(user_loss)
    with pytest.raises(TypeError, match="losses.get"):
        L.output_kind(3)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        L.output_kind("hinge")
