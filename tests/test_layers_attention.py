"""MultiHeadAttention against softmax(Q K^T / sqrt(d)) V in numpy (padding and causal masks,
cross-attention, value_size != key_size), causality, dropout, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)


def reference(params, xq, xk, xv, heads, key_size, value_size, mask=None, causal=False):
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    def proj(name, a, size):
        y = np.asarray(a, np.float64) @ p[name]["w"] + p[name]["b"]
        return y.reshape(a.shape[0], a.shape[1], heads, size)
    q, k, v = proj("query", xq, key_size), proj("key", xk, key_size), proj("value", xv,
                                                                           value_size)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(key_size)
    visible = np.ones(logits.shape, bool)
    if mask is not None:
        visible &= np.broadcast_to(mask, logits.shape)
    if causal:
        visible &= np.tril(np.ones(logits.shape[-2:], bool))
    logits = np.where(visible, logits, -1e30)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    out = np.einsum("bhqk,bkhd->bqhd", w, v).reshape(xq.shape[0], xq.shape[1], -1)
    return out @ p["output"]["w"] + p["output"]["b"]


def random_params(layer, x):
    params, _ = layer.init(KEY, x)
    return jax.tree.map(lambda a: jnp.asarray(RNG.normal(scale=0.5, size=a.shape), jnp.float32),
                        params)


@pytest.mark.parametrize("value_size", [None, 3])
def test_self_attention_with_padding_and_causal_masks_matches_numpy(value_size):
    x = RNG.normal(size=(2, 5, 6)).astype(np.float32)
    layer = fnn.MultiHeadAttention(2, 4, value_size=value_size, causal=True)
    params = random_params(layer, x)
    lengths = np.array([5, 3])
    pad = (np.arange(5)[None, :] < lengths[:, None])[:, None, None, :]   # (batch, 1, 1, kv)
    y, _ = jax.jit(layer.apply)(params, {}, x, mask=pad)
    ref = reference(params, x, x, x, 2, 4, value_size or 4, pad, causal=True)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 5, 6)


def test_cross_attention_and_separate_values_match_numpy():
    q = RNG.normal(size=(2, 3, 5)).astype(np.float32)
    kv = RNG.normal(size=(2, 7, 4)).astype(np.float32)
    v = RNG.normal(size=(2, 7, 2)).astype(np.float32)
    layer = fnn.MultiHeadAttention(3, 2, out_features=6)
    for inputs in ((q, kv), (q, kv, v)):
        params = random_params(layer, inputs)
        y, _ = layer.apply(params, {}, inputs)
        ref = reference(params, q, kv, inputs[-1], 3, 2, 2)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
        assert y.shape == (2, 3, 6)
    assert params["value"]["w"].shape == (2, 6) and params["output"]["w"].shape == (6, 6)


def test_a_causal_output_does_not_see_later_inputs():
    layer = fnn.MultiHeadAttention(2, 3, causal=True)
    x = RNG.normal(size=(1, 6, 4)).astype(np.float32)
    params, _ = layer.init(KEY, x)
    changed = x.copy()
    changed[:, 4:] = RNG.normal(size=(1, 2, 4))
    y1, _ = layer.apply(params, {}, x)
    y2, _ = layer.apply(params, {}, changed)
    np.testing.assert_array_equal(y1[:, :4], y2[:, :4])
    assert not np.allclose(y1[:, 4:], y2[:, 4:])


def test_dropout_on_the_attention_weights_only_in_training():
    layer = fnn.MultiHeadAttention(2, 3, dropout_rate=0.5)
    x = RNG.normal(size=(2, 4, 6)).astype(np.float32)
    params, _ = layer.init(KEY, x)
    plain, _ = fnn.MultiHeadAttention(2, 3).apply(params, {}, x)
    np.testing.assert_allclose(layer.apply(params, {}, x)[0], plain, rtol=1e-6, atol=1e-6)
    dropped, _ = layer.apply(params, {}, x, key=KEY, train=True)
    assert not np.allclose(dropped, plain)
    with pytest.raises(fnn.errors.LayerValueError, match="needs a PRNG key"):
        layer.apply(params, {}, x, train=True)


@pytest.mark.parametrize("kwargs, x, error, match", [
    ({"mask": np.ones((2, 3), bool)}, None, fnn.errors.LayerValueError,
     r"does not broadcast to \(batch, heads, q_len, kv_len\) = \(2, 2, 4, 4\)"),
    ({"mask": np.ones((2, 1, 1, 4))}, None, fnn.errors.LayerTypeError, "boolean"),
    ({}, np.ones((2, 4), np.float32), fnn.errors.LayerValueError, "expected query of rank 3"),
    ({}, (np.ones((2, 4, 6), np.float32), np.ones((3, 5, 6), np.float32)),
     fnn.errors.LayerValueError, "share the batch size"),
])
def test_bad_input_is_a_layer_error(kwargs, x, error, match):
    layer = fnn.MultiHeadAttention(2, 3)
    good = np.ones((2, 4, 6), np.float32)
    params, _ = layer.init(KEY, good)
    with pytest.raises(error, match=match):
        layer.apply(params, {}, good if x is None else x, **kwargs)


def test_bad_hyperparameters():
    with pytest.raises(fnn.errors.LayerValueError, match="num_heads must be a positive int"):
        fnn.MultiHeadAttention(0, 4)
    with pytest.raises(fnn.errors.LayerValueError, match="dropout_rate"):
        fnn.MultiHeadAttention(2, 4, dropout_rate=1.0)
