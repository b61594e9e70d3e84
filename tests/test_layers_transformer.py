"""Positional encodings and transformer blocks against numpy compositions of the notes'
equations, masks (padding, causal, memory), dropout, and an encoder-decoder trained by fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from test_layers_attention import reference as attention_reference

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
HEADS, KEY_SIZE, MLP, D = 2, 3, 7, 6


def layer_norm(x, p):
    x = np.asarray(x, np.float64)
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * np.asarray(p["scale"]) + np.asarray(p["bias"])


def dense(x, p):
    return np.asarray(x, np.float64) @ np.asarray(p["w"], np.float64) + np.asarray(p["b"])


def encoder_reference(params, x, norm_first, mask=None):
    attn = lambda a: attention_reference(params["self_attention"], a, a, a, HEADS, KEY_SIZE,
                                         KEY_SIZE, mask)          # noqa: E731
    mlp = lambda a: dense(np.maximum(dense(a, params["mlp_hidden"]), 0),
                          params["mlp_output"])                   # noqa: E731
    if norm_first:
        h = x + attn(layer_norm(x, params["self_attention_norm"]))
        return h + mlp(layer_norm(h, params["mlp_norm"]))
    h = layer_norm(x + attn(x), params["self_attention_norm"])
    return layer_norm(h + mlp(h), params["mlp_norm"])


def randomized(params):
    return jax.tree.map(lambda a: jnp.asarray(RNG.normal(scale=0.4, size=a.shape), jnp.float32),
                        params)


def test_sinusoidal_table_is_the_papers_formula():
    y, _ = fnn.SinusoidalPositionalEncoding().apply({}, {}, jnp.zeros((1, 7, 6)))
    t, i = np.arange(7)[:, None], np.arange(3)[None, :]
    np.testing.assert_allclose(y[0, :, 0::2], np.sin(t / 10000 ** (2 * i / 6)), atol=1e-6)
    np.testing.assert_allclose(y[0, :, 1::2], np.cos(t / 10000 ** (2 * i / 6)), atol=1e-6)
    x = RNG.normal(size=(2, 7, 5)).astype(np.float32)             # odd width
    y, _ = fnn.SinusoidalPositionalEncoding(scale=2.0).apply({}, {}, x)
    assert y.shape == x.shape and np.allclose(y[:, 0, 1::2] - 2 * x[:, 0, 1::2], 1.0)


def test_learned_positions_add_their_rows_and_refuse_long_sequences():
    layer = fnn.LearnedPositionalEmbedding(4)
    params, _ = layer.init(KEY, jnp.zeros((1, 2, 3)))
    x = RNG.normal(size=(2, 3, 3)).astype(np.float32)
    mask = np.ones((2, 3), bool)
    (y, m), _ = layer.apply(params, {}, (x, mask))
    np.testing.assert_allclose(y, x + np.asarray(params["embedding"])[None, :3], rtol=1e-6)
    assert m is mask
    with pytest.raises(fnn.errors.LayerValueError, match="longer .* than max_len=4"):
        layer.apply(params, {}, np.zeros((1, 5, 3), np.float32))


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_matches_numpy(norm_first):
    block = fnn.TransformerEncoderBlock(HEADS, KEY_SIZE, MLP, norm_first=norm_first)
    x = RNG.normal(size=(2, 5, D)).astype(np.float32)
    params = randomized(block.init(KEY, x)[0])
    y, _ = jax.jit(block.apply)(params, {}, x)
    np.testing.assert_allclose(y, encoder_reference(params, x, norm_first), rtol=2e-4,
                               atol=2e-4)


def test_encoder_padding_mask_gives_each_sequence_its_own_result():
    block = fnn.TransformerEncoderBlock(HEADS, KEY_SIZE, MLP)
    x = RNG.normal(size=(2, 5, D)).astype(np.float32)
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    params = randomized(block.init(KEY, (x, mask))[0])
    (y, m), _ = block.apply(params, {}, (x, mask))
    alone, _ = block.apply(params, {}, x[1:, :3])
    np.testing.assert_allclose(y[1, :3], alone[0], rtol=1e-5, atol=1e-5)
    assert m is mask


def test_decoder_is_causal_and_ignores_padded_memory():
    block = fnn.TransformerDecoderBlock(HEADS, KEY_SIZE, MLP)
    target = RNG.normal(size=(2, 4, D)).astype(np.float32)
    memory = RNG.normal(size=(2, 6, 5)).astype(np.float32)       # another width: cross-attn
    memory_mask = np.array([[True] * 6, [True] * 4 + [False] * 2])
    params = randomized(block.init(KEY, (target, (memory, memory_mask)))[0])
    assert params["cross_attention"]["key"]["w"].shape == (5, HEADS * KEY_SIZE)
    apply = jax.jit(lambda t, m: block.apply(params, {}, (t, (m, memory_mask)))[0][0])
    y = apply(target, memory)
    later = target.copy()
    later[:, 2:] = RNG.normal(size=(2, 2, D))
    np.testing.assert_allclose(apply(later, memory)[:, :2], y[:, :2], rtol=1e-6, atol=1e-6)
    padded = memory.copy()
    padded[1, 4:] = 100.0
    np.testing.assert_allclose(apply(target, padded)[1], y[1], rtol=1e-6, atol=1e-6)
    with pytest.raises(fnn.errors.LayerValueError, match="pair \\(target, memory\\)"):
        block.apply(params, {}, target)


def test_dropout_needs_a_key_and_is_off_in_evaluation():
    block = fnn.TransformerEncoderBlock(HEADS, KEY_SIZE, MLP, dropout_rate=0.3)
    x = RNG.normal(size=(2, 5, D)).astype(np.float32)
    params, _ = block.init(KEY, x)
    plain, _ = fnn.TransformerEncoderBlock(HEADS, KEY_SIZE, MLP).apply(params, {}, x)
    np.testing.assert_allclose(block.apply(params, {}, x)[0], plain, rtol=1e-6)
    assert not np.allclose(block.apply(params, {}, x, key=KEY, train=True)[0], plain)
    with pytest.raises(fnn.errors.LayerValueError, match="needs a PRNG key"):
        block.apply(params, {}, x, train=True)


def test_an_encoder_decoder_learns_to_copy_with_fit():
    vocab, length, n = 5, 4, 256
    source = RNG.integers(1, vocab, size=(n, length)).astype(np.int32)
    target_in = np.concatenate([np.zeros((n, 1), np.int32), source[:, :-1]], axis=1)  # 0 = start
    embed = lambda: fnn.Sequential([fnn.Embedding(vocab, 8),           # noqa: E731
                                    fnn.SinusoidalPositionalEncoding()])
    model = fnn.EncoderDecoder(
        encoder=fnn.Sequential([embed(), fnn.TransformerEncoderBlock(2, 4, 16)]),
        decoder=fnn.TransformerDecoderBlock(2, 4, 16), target_embedding=embed(),
        head=fnn.Dense(vocab))
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.01),
                     ((source, target_in), source), epochs=40, batch_size=64, key=KEY,
                     progress=False, metrics=["accuracy"])
    assert result.history["accuracy"][-1] > 0.9
    rows = fnn.summary_rows(model, (source[:1], target_in[:1]))
    # hand count (d=8, 2 heads of 4, MLP 16): attention 4 * (8 * 8 + 8) = 288, a LayerNorm
    # 16, the MLP 8 * 16 + 16 + 16 * 8 + 8 = 280; encoder block 288 + 2 * 16 + 280 = 600,
    # decoder block 2 * 288 + 3 * 16 + 280 = 904; embeddings 5 * 8, head 8 * 5 + 5
    assert [(r.path, r.params) for r in rows if r.params] == [
        ("encoder/0/0", 40), ("encoder/1", 600), ("target_embedding/0", 40), ("decoder", 904),
        ("head", 45)]


def test_encoder_decoder_checks_source_and_target_ids_against_their_own_vocabularies():
    model = fnn.EncoderDecoder(encoder=fnn.Embedding(10, 4),
                               decoder=fnn.TransformerDecoderBlock(1, 2, 4),
                               target_embedding=fnn.Embedding(5, 4), head=fnn.Dense(5))
    source = np.array([[9, 8, 7]], np.int32)              # fine for the source's 10 ids
    target = np.array([[1, 2]], np.int32)
    params, state = model.init(KEY, (source, target))
    assert fnn.predict(model, params, state, (source, target)).shape == (1, 2, 5)
    with pytest.raises(ValueError, match=r"predict target: Embedding ids must lie in \[0, 5\)"):
        fnn.predict(model, params, state, (source, np.array([[1, 7]], np.int32)))
    with pytest.raises(ValueError, match=r"predict source: Embedding ids must lie in \[0, 10\)"):
        fnn.predict(model, params, state, (np.array([[10, 0, 0]], np.int32), target))
