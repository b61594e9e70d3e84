"""Every layer: abstract init == real init (and computes nothing), eval_shape(apply) == apply,
jit == eager, vmap over params == loop."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built

KEY = jax.random.key(0)
APPLY_KEY = jax.random.key(1)

def _scale(p, x):
    return x * p["s"]


def _scale_init(key, x):
    return {"s": jnp.ones((1, x.shape[-1]))}


# name -> (a function building the layer, input shape); each call builds a new layer object.
BUILDERS = {
    "dense": (lambda: fnn.Dense(3), (4, 5)),
    "dense_rank3": (lambda: fnn.Dense(3, use_bias=False), (2, 4, 5)),
    "activation": (lambda: fnn.Activation("relu"), (4, 5)),
    "prelu": (lambda: fnn.PReLU(), (4, 5)),
    "prelu_shared": (lambda: fnn.PReLU(shared=True), (4, 5)),
    "dropout": (lambda: fnn.Dropout(0.5), (4, 5)),
    "flatten": (lambda: fnn.Flatten(), (4, 2, 3)),
    "conv_1d_causal": (lambda: fnn.Conv1D(4, 3, padding="causal", dilation=2), (2, 7, 3)),
    "conv_2d": (lambda: fnn.Conv2D(4, 3, stride=2, padding="same"), (2, 6, 6, 3)),
    "conv_2d_groups": (lambda: fnn.Conv2D(4, (2, 3), groups=2, use_bias=False), (2, 5, 6, 2)),
    "conv_3d": (lambda: fnn.Conv3D(2, 2, padding=((1, 0), (0, 1), (1, 1))), (1, 3, 3, 3, 2)),
    "conv_transpose_1d": (lambda: fnn.ConvTranspose1D(2, 3, stride=2, padding=1), (2, 5, 3)),
    "conv_transpose_2d": (lambda: fnn.ConvTranspose2D(3, 3, stride=2, padding="same"),
                          (2, 3, 4, 2)),
    "max_pool_1d": (lambda: fnn.MaxPool1D(2), (2, 7, 3)),
    "max_pool_2d": (lambda: fnn.MaxPool2D(2), (2, 6, 6, 3)),
    "max_pool_3d": (lambda: fnn.MaxPool3D(2, stride=1), (2, 3, 4, 3, 2)),
    "min_pool_1d": (lambda: fnn.MinPool1D(3, stride=2, padding="same"), (2, 7, 3)),
    "min_pool_2d": (lambda: fnn.MinPool2D((2, 3), stride=1), (2, 6, 6, 3)),
    "avg_pool_1d": (lambda: fnn.AvgPool1D(2, padding="same"), (2, 7, 3)),
    "avg_pool_2d": (lambda: fnn.AvgPool2D(3, stride=2, padding="same"), (2, 6, 6, 3)),
    "global_avg_pool": (lambda: fnn.GlobalAvgPool(), (2, 6, 6, 3)),
    "global_max_pool": (lambda: fnn.GlobalMaxPool(keepdims=True), (2, 7, 3)),
    "residual": (lambda: fnn.Residual(fnn.Sequential([fnn.Dense(5), fnn.Activation("tanh")])),
                 (4, 5)),
    "residual_shortcut": (lambda: fnn.Residual(fnn.Dense(3), shortcut=fnn.Dense(3)), (4, 5)),
    "parallel": (lambda: fnn.Parallel([fnn.Dense(2), fnn.Dropout(0.5)]), (4, 5)),
    "parallel_named": (lambda: fnn.Parallel({"a": fnn.Dense(2), "b": fnn.PReLU()}), (4, 5)),
    "function": (lambda: fnn.FunctionLayer(_scale, _scale_init), (4, 5)),
    "batch_norm": (lambda: fnn.BatchNorm(), (4, 5)),
    "batch_norm_2d": (lambda: fnn.BatchNorm(momentum=0.9, use_bias=False), (2, 3, 3, 4)),
    "layer_norm": (lambda: fnn.LayerNorm(axis=(1, 2)), (2, 3, 4)),
    "group_norm": (lambda: fnn.GroupNorm(2), (2, 3, 3, 4)),
    "rms_norm": (lambda: fnn.RMSNorm(), (4, 5)),
    "embedding": (lambda: fnn.Embedding(6, 3), (4, 5)),
    "embedding_model": (lambda: fnn.Sequential([fnn.Embedding(6, 4), fnn.Flatten(),
                                                fnn.Dense(2)]), (4, 3)),
    "simple_rnn": (lambda: fnn.SimpleRNN(3), (2, 4, 5)),
    "lstm_sequences": (lambda: fnn.LSTM(3, return_sequences=True, unroll=2), (2, 4, 5)),
    "gru_reverse": (lambda: fnn.GRU(3, reverse=True), (2, 4, 5)),
    "lstm_stack": (lambda: fnn.Sequential([fnn.Embedding(6, 4),
                                           fnn.GRU(3, return_sequences=True), fnn.LSTM(2)]),
                   (2, 5)),
    "bidirectional": (lambda: fnn.Bidirectional(fnn.LSTM(3, return_sequences=True),
                                                merge="sum"), (2, 4, 5)),
    "attention": (lambda: fnn.MultiHeadAttention(2, 3, dropout_rate=0.2), (2, 4, 5)),
    "attention_causal": (lambda: fnn.MultiHeadAttention(1, 2, value_size=3, out_features=4,
                                                        causal=True), (2, 4, 5)),
    "sinusoidal": (lambda: fnn.SinusoidalPositionalEncoding(), (2, 4, 5)),
    "learned_positions": (lambda: fnn.LearnedPositionalEmbedding(6), (2, 4, 5)),
    "encoder_block": (lambda: fnn.TransformerEncoderBlock(2, 3, 7, dropout_rate=0.1), (2, 4, 6)),
    "encoder_block_post_norm": (lambda: fnn.TransformerEncoderBlock(1, 2, 3, norm_first=False),
                                (2, 4, 6)),
    "sequential": (lambda: fnn.Sequential([
        fnn.Flatten(), fnn.Dense(6), fnn.PReLU(), fnn.Dropout(0.2),
        fnn.Sequential([fnn.Dense(2), fnn.Activation("softmax")])]), (4, 2, 3)),
}
LAYERS = {name: (build(), shape) for name, (build, shape) in BUILDERS.items()}
INTEGER_IDS = {"embedding": 6, "embedding_model": 6, "lstm_stack": 6}   # fed ids < 6


def _example(name, shape, seed):
    rng = np.random.default_rng(seed)
    if name in INTEGER_IDS:
        return jnp.asarray(rng.integers(0, INTEGER_IDS[name], size=shape), jnp.int32)
    return jnp.asarray(rng.normal(size=shape), jnp.float32)


def _shapes(tree):
    return jax.tree.map(lambda a: (tuple(a.shape), jnp.dtype(a.dtype)), tree)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_declared_shapes_equal_returned_shapes(name):
    layer, shape = LAYERS[name]
    x = _example(name, shape, 0)
    struct = jax.ShapeDtypeStruct(shape, x.dtype)

    params, state = layer.init(KEY, x)
    assert _shapes(jax.eval_shape(layer.init, KEY, struct)) == _shapes((params, state))
    assert _shapes(layer.init(KEY, struct)) == _shapes((params, state))   # struct, no eval_shape

    for train in (False, True):
        apply = functools.partial(layer.apply, key=APPLY_KEY, train=train)
        y, new_state = apply(params, state, x)
        declared = jax.eval_shape(apply, params, state, struct)
        assert _shapes(declared) == _shapes((y, new_state))
        y_jit, _ = jax.jit(apply)(params, state, x)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                             rtol=1e-6, atol=1e-6), y_jit, y)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_are_hashable_values(name):
    # Two separately built layers of one configuration are equal and hash alike (so a
    # compiled step keyed on the layer is reused); another configuration is not equal.
    build, _ = BUILDERS[name]
    layer, again = build(), build()
    assert layer is not again and layer == again and hash(layer) == hash(again)
    others = [other for key, (make, _) in BUILDERS.items() if key != name for other in [make()]]
    assert all(layer != other for other in others)
    with pytest.raises(dataclasses.FrozenInstanceError):
        layer.extra = 1


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_vmap_over_params_equals_loop_and_grad_has_params_structure(name):
    layer, shape = LAYERS[name]
    x = _example(name, shape, 1)

    def forward(params, state):
        return layer.apply(params, state, x, key=APPLY_KEY, train=True)[0]

    def total(y):  # a layer may return a tuple or dict of outputs (Parallel)
        return sum(jnp.sum(leaf ** 2) for leaf in jax.tree.leaves(y))

    @jax.jit  # one compilation for everything: vmap(init), vmap(apply), the loops, grad
    def transformed(keys):
        params, state = jax.vmap(lambda k: layer.init(k, x))(keys)
        batched = jax.vmap(forward, axis_size=2)(params, state)  # axis_size: params may be {}
        inits = [layer.init(keys[i], x) for i in range(2)]
        looped = [forward(*inits[i]) for i in range(2)]
        grads = jax.grad(lambda p: total(forward(p, inits[0][1])))(inits[0][0])
        return (params, state), batched, inits, looped, grads

    stacked, batched, inits, looped, grads = transformed(jax.random.split(KEY, 2))
    for i in range(2):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a[i]), np.asarray(b),
                                                             rtol=1e-5, atol=1e-6),
                     batched, looped[i])
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-6), stacked,
                     inits[i])
    p0 = inits[0][0]
    assert jax.tree.structure(grads) == jax.tree.structure(p0)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_abstract_init_and_summary_compile_transfer_and_allocate_nothing():
    # Odd sizes and constant biases: no program cached by another test can hide real work.
    model = fnn.Sequential([
        fnn.Flatten(), fnn.Dense(13, b_init=fnn.initializers.constant(0.3)), fnn.PReLU(0.2),
        fnn.Dropout(0.5), fnn.Dense(7, w_init="he_normal", b_init="ones"),
        fnn.Activation("softmax")])
    struct = jax.ShapeDtypeStruct((3, 11, 2), jnp.float32)
    with programs_built() as compiled, jax.transfer_guard("disallow"):
        params, state = jax.eval_shape(model.init, KEY, struct)
        rows = fnn.summary_rows(model, struct)
        for name, (layer, shape) in LAYERS.items():
            dtype = jnp.int32 if name in INTEGER_IDS else jnp.float32
            jax.eval_shape(layer.init, KEY, jax.ShapeDtypeStruct(shape, dtype))
    assert compiled == []
    assert all(isinstance(a, jax.ShapeDtypeStruct) for a in jax.tree.leaves(params))
    assert _shapes(params["1"]) == {"w": ((22, 13), jnp.float32), "b": ((13,), jnp.float32)}
    assert state == {} and [r.output_shape for r in rows][-1] == (3, 7)
