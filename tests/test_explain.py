"""fnn.explain against independent references: the linear model's exact attributions, the
integral's completeness, finite differences, CAM, numpy loops for occlusion and permutations."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.explain import integrated
from tests.compile_events import programs_built

KEY = jax.random.key(0)

# A linear classifier: S_i = w[:, t] . x_i + b_t, whose attributions are known exactly.
LINEAR = fnn.Dense(3)
X = jax.random.normal(jax.random.key(1), (5, 4))
LIN_PARAMS, _ = LINEAR.init(KEY, X)
W = np.asarray(LIN_PARAMS["w"])
TARGET = jnp.array([0, 2, 1, 1, 0])

# A tanh network, where the integral is not trivial.
TANH = fnn.Sequential([fnn.Dense(8), fnn.Activation("tanh"), fnn.Dense(3)])
TANH_PARAMS, _ = TANH.init(jax.random.key(2), X)


def test_linear_model_attributions_are_w_times_x():
    expected = W[:, np.asarray(TARGET)].T * np.asarray(X)
    for method in integrated.METHODS:
        ig = fnn.explain.integrated_gradients(LINEAR, LIN_PARAMS, {}, X, target=TARGET,
                                              steps=3, method=method)
        np.testing.assert_allclose(ig, expected, atol=1e-5, err_msg=method)
    np.testing.assert_allclose(fnn.explain.gradient_x_input(LINEAR, LIN_PARAMS, {}, X,
                                                            target=TARGET), expected, atol=1e-6)
    np.testing.assert_allclose(fnn.explain.occlusion(LINEAR, LIN_PARAMS, {}, X, window=1,
                                                     target=TARGET), expected, atol=1e-5)
    np.testing.assert_allclose(fnn.explain.saliency(LINEAR, LIN_PARAMS, {}, X, target=TARGET),
                               W[:, np.asarray(TARGET)].T, atol=1e-6)


def test_target_none_explains_the_predicted_class():
    predicted = np.argmax(np.asarray(X) @ W + np.asarray(LIN_PARAMS["b"]), axis=1)
    np.testing.assert_allclose(fnn.explain.saliency(LINEAR, LIN_PARAMS, {}, X),
                               W[:, predicted].T, atol=1e-6)


def test_saliency_equals_finite_differences():
    x = np.asarray(X[:2], np.float64)
    target = np.array([1, 2])
    got = np.asarray(fnn.explain.saliency(TANH, TANH_PARAMS, {}, jnp.asarray(x, jnp.float32),
                                          target=jnp.asarray(target)))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), TANH_PARAMS)
    f = lambda v: (np.tanh(v @ p["0"]["w"] + p["0"]["b"]) @ p["2"]["w"] + p["2"]["b"])[
        np.arange(2), target]
    eps = 1e-4
    numeric = np.stack([(f(x + eps * e) - f(x - eps * e)) / (2 * eps)
                        for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(got, numeric, atol=2e-4)


def test_delta_shrinks_as_steps_grow_for_every_method():
    baseline = jnp.full((4,), 0.5)
    for method in integrated.METHODS:
        deltas = []
        for steps in (2, 8, 32):
            _, delta = fnn.explain.integrated_gradients(
                TANH, TANH_PARAMS, {}, 2 * X, target=1, baseline=baseline, steps=steps,
                method=method, return_delta=True)
            deltas.append(float(jnp.mean(jnp.abs(delta))))
        assert deltas[0] > deltas[1] > deltas[2], (method, deltas)
    assert deltas[2] < 1e-3


def test_separable_function_gives_each_feature_its_own_change():
    fs = (jnp.sin, lambda v: v ** 3, jnp.tanh)
    model = fnn.FunctionLayer(lambda p, x: sum(f(x[:, j]) for j, f in enumerate(fs))[:, None])
    x = jnp.array([[0.3, -1.2, 2.0], [1.5, 0.4, -0.7]])
    b = jnp.array([0.1, 0.2, -0.3])
    ig = fnn.explain.integrated_gradients(model, {}, {}, x, baseline=b, steps=20)
    expected = jnp.stack([f(x[:, j]) - f(b[j]) for j, f in enumerate(fs)], axis=1)
    np.testing.assert_allclose(ig, expected, atol=1e-5)


def test_batched_equals_per_example_and_chunked_equals_unchunked():
    full = fnn.explain.integrated_gradients(TANH, TANH_PARAMS, {}, X, target=TARGET, steps=10)
    for i in range(2):
        one = fnn.explain.integrated_gradients(TANH, TANH_PARAMS, {}, X[i:i + 1],
                                               target=TARGET[i:i + 1], steps=10)
        np.testing.assert_allclose(one[0], full[i], atol=1e-6)
    chunked = fnn.explain.integrated_gradients(TANH, TANH_PARAMS, {}, X, target=TARGET,
                                               steps=10, batch_size=7)
    np.testing.assert_allclose(chunked, full, atol=1e-6)
    key = jax.random.key(3)
    sg = functools.partial(fnn.explain.smoothgrad, TANH, TANH_PARAMS, {}, X, key=key, samples=6)
    np.testing.assert_allclose(sg(batch_size=4), sg(), atol=1e-6)
    occ = functools.partial(fnn.explain.occlusion, TANH, TANH_PARAMS, {}, X, window=2, stride=1)
    np.testing.assert_allclose(occ(batch_size=3), occ(), atol=1e-6)


def test_several_targets_per_example_equal_one_target_at_a_time():
    targets = jnp.array([[0, 2], [1, 0], [2, 2], [0, 1], [1, 2]])
    both, delta = fnn.explain.integrated_gradients(TANH, TANH_PARAMS, {}, X, target=targets,
                                                   steps=6, return_delta=True)
    assert both.shape == (5, 2, 4) and delta.shape == (5, 2)
    for j in range(2):
        one = fnn.explain.integrated_gradients(TANH, TANH_PARAMS, {}, X, target=targets[:, j],
                                               steps=6)
        np.testing.assert_allclose(both[:, j], one, atol=1e-6)
    sal = fnn.explain.saliency(TANH, TANH_PARAMS, {}, X, target=targets)
    np.testing.assert_allclose(sal[:, 1], fnn.explain.saliency(TANH, TANH_PARAMS, {}, X,
                                                               target=targets[:, 1]), atol=1e-6)


def test_smoothgrad_with_tiny_noise_is_saliency_and_its_kinds_agree():
    sal = fnn.explain.saliency(TANH, TANH_PARAMS, {}, X, target=1)
    sg = fnn.explain.smoothgrad(TANH, TANH_PARAMS, {}, X, key=KEY, target=1, samples=3,
                                noise=1e-7)
    np.testing.assert_allclose(sg, sal, atol=1e-5)
    kinds = {kind: fnn.explain.smoothgrad(TANH, TANH_PARAMS, {}, X, key=KEY, target=1,
                                          samples=5, noise=0.3, kind=kind)
             for kind in ("mean", "square", "variance")}
    np.testing.assert_allclose(kinds["variance"], kinds["square"] - kinds["mean"] ** 2,
                               atol=1e-6)
    assert float(jnp.min(kinds["variance"])) > -1e-6


def test_same_result_under_jit_and_no_new_program_on_the_second_call():
    ig = lambda p, x: fnn.explain.integrated_gradients(TANH, p, {}, x, target=1, steps=5)
    eager = ig(TANH_PARAMS, X)
    np.testing.assert_allclose(jax.jit(ig)(TANH_PARAMS, X), eager, atol=1e-6)
    other_params, other_x = jax.tree.map(lambda a: a + 1.0, TANH_PARAMS), X + 1.0
    with programs_built() as built:
        ig(other_params, other_x)
    assert built == []


def test_occlusion_equals_a_numpy_loop_over_windows():
    x = np.asarray(X[:2])
    got = fnn.explain.occlusion(TANH, TANH_PARAMS, {}, jnp.asarray(x), window=2, stride=1,
                                target=jnp.array([0, 2]), baseline=0.5)
    p = jax.tree.map(np.asarray, TANH_PARAMS)
    f = lambda v: (np.tanh(v @ p["0"]["w"] + p["0"]["b"]) @ p["2"]["w"] + p["2"]["b"])[
        np.arange(2), [0, 2]]
    total, count = np.zeros_like(x), np.zeros(4)
    for start in range(3):                          # windows [0,2), [1,3), [2,4)
        hidden = x.copy()
        hidden[:, start:start + 2] = 0.5
        total[:, start:start + 2] += (f(x) - f(hidden))[:, None]
        count[start:start + 2] += 1
    np.testing.assert_allclose(got, total / count, atol=1e-5)


def test_occlusion_windows_cover_every_feature():
    assert fnn.explain.occlude.window_starts(10, 4, 4) == (0, 4, 6)
    assert fnn.explain.occlude.window_starts(4, 4, 1) == (0,)


def test_permutation_importance_equals_a_reference_with_the_same_permutations():
    w = jnp.array([[1.5], [0.0], [-0.5]])
    params = {"w": w, "b": jnp.zeros(1)}
    x = jax.random.normal(jax.random.key(4), (40, 3))
    y = x @ jnp.array([[1.5], [0.3], [-0.5]])
    key = jax.random.key(5)
    result = fnn.explain.permutation_importance(fnn.Dense(1), params, {}, (x, y), metric="mse",
                                                key=key, repeats=3)
    assert result.mean[1] == 0.0 and result.std[1] == 0.0     # a feature with zero weight
    xn, yn, wn = np.asarray(x), np.asarray(y), np.asarray(w)
    mse = lambda v: float(np.mean((v @ wn - yn) ** 2))
    for j in range(3):
        drops = []
        for r in range(3):
            order = np.asarray(jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(key, j), r), 40))
            shuffled = xn.copy()
            shuffled[:, j] = xn[order, j]
            drops.append(mse(shuffled) - mse(xn))
        np.testing.assert_allclose(result.values[j], drops, rtol=1e-4, atol=1e-6)
    assert result.ranked()[0][0] == "0" and "mse" in str(result)
    grouped = fnn.explain.permutation_importance(
        fnn.Dense(1), params, {}, (x, y), metric="mse", key=key, repeats=2,
        groups={"first two": [0, 1], "last": [2]}, batch_size=16)
    assert grouped.names == ("first two", "last") and grouped.values.shape == (2, 2)


def test_permutation_importance_asks_which_way_a_function_metric_goes():
    with pytest.raises(ValueError, match="greater_is_better"):
        fnn.explain.permutation_importance(LINEAR, LIN_PARAMS, {}, (X, TARGET),
                                           metric=lambda p, y: jnp.mean(p), key=KEY)
    result = fnn.explain.permutation_importance(LINEAR, LIN_PARAMS, {}, (X, TARGET),
                                                metric="accuracy", key=KEY, repeats=2)
    assert result.values.shape == (4, 2)


CNN = fnn.Sequential({"conv": fnn.Conv2D(4, 3, padding="same"), "relu": fnn.Activation("relu"),
                      "pool": fnn.GlobalAvgPool(), "head": fnn.Dense(3)})
IMAGES = jax.random.normal(jax.random.key(6), (3, 6, 6, 2))
CNN_PARAMS, CNN_STATE = CNN.init(jax.random.key(7), IMAGES)


def test_grad_cam_with_global_average_pooling_is_cam():
    target = jnp.array([0, 1, 2])
    cam = fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer="relu", target=target)
    maps = fnn.explain.intermediates(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layers=["relu"])["relu"]
    w = np.asarray(CNN_PARAMS["head"]["w"])[:, np.asarray(target)].T          # (batch, k)
    expected = np.maximum(np.einsum("bhwk,bk->bhw", np.asarray(maps), w), 0) / 36
    np.testing.assert_allclose(cam, expected, atol=1e-6)
    same = fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer=1, target=target)
    np.testing.assert_allclose(same, cam)
    big = fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer="relu", upsample=True)
    assert big.shape == (3, 6, 6)


def test_layer_paths_that_do_not_exist_or_have_no_spatial_axes_are_refused():
    with pytest.raises(ValueError, match="no layer at path 'body'.*'conv' \\(Conv2D\\)"):
        fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer="body")
    with pytest.raises(ValueError, match="'head' \\(Dense\\) outputs \\(3, 3\\), with no spatial"):
        fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer="head")
    with pytest.raises(ValueError, match="out of range for a Sequential of 4"):
        fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer=4)


def test_bad_targets_baselines_and_steps_get_clear_errors():
    with pytest.raises(ValueError, match="target 3 is out of range: the model has 3 classes"):
        fnn.explain.saliency(LINEAR, LIN_PARAMS, {}, X, target=3)
    with pytest.raises(ValueError, match="baseline of shape \\(3,\\) for an input of shape"):
        fnn.explain.integrated_gradients(LINEAR, LIN_PARAMS, {}, X, baseline=jnp.zeros(3))
    with pytest.raises(ValueError, match="steps must be"):
        fnn.explain.integrated_gradients(LINEAR, LIN_PARAMS, {}, X, steps=0)
    with pytest.raises(ValueError, match="method must be one of"):
        fnn.explain.integrated_gradients(LINEAR, LIN_PARAMS, {}, X, method="simpson")
    with pytest.raises(TypeError, match="floating inputs"):
        fnn.explain.saliency(LINEAR, LIN_PARAMS, {}, jnp.ones((5, 4), jnp.int32))
    with pytest.raises(ValueError, match="window .* larger than the example shape"):
        fnn.explain.occlusion(LINEAR, LIN_PARAMS, {}, X, window=5)


def test_several_inputs_and_several_outputs():
    two_in = fnn.FunctionLayer(lambda p, x: x[0] @ p["a"] + x[1] @ p["b"])
    params = {"a": jnp.array([[1.0], [2.0]]), "b": jnp.array([[-3.0]])}
    x = (jnp.array([[1.0, 1.0], [2.0, 0.5]]), jnp.array([[1.0], [2.0]]))
    ig = fnn.explain.integrated_gradients(two_in, params, {}, x, steps=2)
    np.testing.assert_allclose(ig[0], x[0] * jnp.array([[1.0, 2.0]]), atol=1e-6)
    np.testing.assert_allclose(ig[1], -3.0 * x[1], atol=1e-6)
    heads = fnn.Sequential([fnn.Dense(4), fnn.Parallel({"digit": fnn.Dense(3),
                                                        "size": fnn.Dense(1)})])
    params, state = heads.init(KEY, X)
    with pytest.raises(ValueError, match="several outputs \\['digit', 'size'\\]; name"):
        fnn.explain.saliency(heads, params, state, X)
    size = fnn.explain.saliency(heads, params, state, X, output="size")
    w = np.asarray(params["0"]["w"] @ params["1"]["size"]["w"])[:, 0]
    np.testing.assert_allclose(size, np.broadcast_to(w, (5, 4)), atol=1e-6)
    with pytest.raises(ValueError, match="target 1 is out of range"):
        fnn.explain.saliency(heads, params, state, X, output="size", target=1)


def test_attention_weights_are_the_softmax_of_scaled_dot_products():
    layer = fnn.MultiHeadAttention(num_heads=2, key_size=3)
    model = fnn.Sequential({"attend": layer})
    x = jax.random.normal(jax.random.key(8), (2, 5, 4))
    params, state = model.init(KEY, x)
    got = fnn.explain.attention_weights(model, params, state, x)["attend"]
    p = jax.tree.map(np.asarray, params["attend"])
    q = (np.asarray(x) @ p["query"]["w"] + p["query"]["b"]).reshape(2, 5, 2, 3)
    k = (np.asarray(x) @ p["key"]["w"] + p["key"]["b"]).reshape(2, 5, 2, 3)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(3)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ValueError, match="no MultiHeadAttention"):
        fnn.explain.attention_weights(TANH, TANH_PARAMS, {}, X)


def test_plots_draw_images_bars_and_sequences():
    plt = pytest.importorskip("matplotlib.pyplot")
    ig = fnn.explain.integrated_gradients(CNN, CNN_PARAMS, CNN_STATE, IMAGES, steps=4)
    cam = fnn.explain.grad_cam(CNN, CNN_PARAMS, CNN_STATE, IMAGES, layer="relu")
    for fig in (fnn.explain.plot_image_attributions(IMAGES[..., :1], ig[..., :1]),
                fnn.explain.plot_image_attributions(IMAGES[..., 0], cam, titles="abc"),
                fnn.explain.plot_feature_importance(jnp.array([0.3, -0.1, 0.5])),
                fnn.explain.plot_sequence_attributions([["a", "b"], ["c", "d"]],
                                                       jnp.ones((2, 2, 3)))):
        plt.close(fig)
