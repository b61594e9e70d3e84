"""SimpleRNN, LSTM and GRU against numpy loops of their equations (masks, initial state,
reverse, sequences), gradients against central differences, bad input, and training in fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)
B, T, F, H = 3, 5, 2, 4


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference(kind, p, x, mask=None, h0=None, reverse=False):
    """The module's equations, one step at a time in float64: (outputs (B, T, H), final)."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    x = np.asarray(x, np.float64)
    mask = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask)
    h = np.zeros((x.shape[0], H)) if h0 is None else np.asarray(h0[0] if kind == "lstm" else h0,
                                                                 np.float64)
    c = np.zeros_like(h) if h0 is None or kind != "lstm" else np.asarray(h0[1], np.float64)
    out = np.zeros((x.shape[0], x.shape[1], H))
    for t in (range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])):
        xt = x[:, t]
        if kind == "rnn":
            h_new, c_new = np.tanh(xt @ p["w_x"] + h @ p["w_h"] + p["b"]), c
        elif kind == "lstm":
            z = xt @ p["w_x"] + h @ p["w_h"] + p["b"]
            i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
            c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h_new = sigmoid(o) * np.tanh(c_new)
        else:
            xz, hz = xt @ p["w_x"] + p["b_x"], h @ p["w_h"] + p["b_h"]
            r = sigmoid(xz[:, :H] + hz[:, :H])
            zg = sigmoid(xz[:, H:2 * H] + hz[:, H:2 * H])
            n = np.tanh(xz[:, 2 * H:] + r * hz[:, 2 * H:])
            h_new, c_new = (1 - zg) * n + zg * h, c
        m = mask[:, t][:, None]
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        out[:, t] = np.where(m, h, 0)
    return out, ((h, c) if kind == "lstm" else h)


LAYERS = {"rnn": fnn.SimpleRNN, "lstm": fnn.LSTM, "gru": fnn.GRU}


def random_params(layer, x):
    params, _ = layer.init(KEY, x)
    return {k: jnp.asarray(RNG.normal(scale=0.5, size=v.shape), jnp.float32)
            for k, v in params.items()}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_last_state_and_sequences_match_numpy(kind):
    x = RNG.normal(size=(B, T, F)).astype(np.float32)
    seq = LAYERS[kind](H, return_sequences=True, return_state=True)
    params = random_params(seq, x)
    (y, final), _ = jax.jit(seq.apply)(params, {}, x)
    ref, ref_final = reference(kind, params, x)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(ref_final)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    last, _ = LAYERS[kind](H).apply(params, {}, x)            # return_sequences=False
    np.testing.assert_allclose(last, ref[:, -1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_mask_initial_state_and_reverse_match_numpy(kind):
    x = RNG.normal(size=(B, T, F)).astype(np.float32)
    lengths = np.array([5, 3, 1])
    mask = np.arange(T)[None, :] < lengths[:, None]            # right padding
    layer = LAYERS[kind](H, return_sequences=True, return_state=True, reverse=True)
    params = random_params(layer, x)
    h0 = RNG.normal(size=(B, H)).astype(np.float32)
    init = (h0, 2 * h0) if kind == "lstm" else h0
    (y, final), _ = jax.jit(layer.apply)(params, {}, (x, mask), initial_state=init)
    y, returned_mask = y
    ref, ref_final = reference(kind, params, x, mask, init, reverse=True)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(returned_mask, mask)
    assert np.all(np.asarray(y)[~mask] == 0)                   # padded steps output zeros
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(ref_final)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # Forward with a mask: each sequence's last state is its own last real step's.
    forward = LAYERS[kind](H)
    last, _ = forward.apply(params, {}, x, mask=mask)
    for n, length in enumerate(lengths):
        alone, _ = reference(kind, params, x[n:n + 1, :length])
        np.testing.assert_allclose(last[n], alone[0, -1], rtol=1e-5, atol=1e-5)


def test_gradients_match_central_differences():
    layer = fnn.LSTM(H)
    x = RNG.normal(size=(2, 4, F)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool)
    params = random_params(layer, x)
    r = RNG.normal(size=(2, H))

    def loss(p):
        return jnp.vdot(layer.apply(p, {}, x, mask=mask)[0], r)

    grads = jax.grad(loss)(params)
    for name in params:
        v = RNG.normal(size=params[name].shape)
        def ref_loss(e):
            p = {k: np.asarray(a, np.float64) + (e * v if k == name else 0)
                 for k, a in params.items()}
            return np.vdot(reference("lstm", p, x, mask)[1][0], r)
        numeric = (ref_loss(1e-5) - ref_loss(-1e-5)) / 2e-5
        np.testing.assert_allclose(np.vdot(grads[name], v), numeric, rtol=2e-4, atol=1e-5)


def test_lstm_forget_bias_and_orthogonal_recurrent_blocks():
    params, _ = fnn.LSTM(3).init(KEY, jnp.ones((1, 2, 5)))
    np.testing.assert_array_equal(params["b"], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    for k in range(4):
        block = np.asarray(params["w_h"][:, 3 * k:3 * (k + 1)])
        np.testing.assert_allclose(block.T @ block, np.eye(3), atol=1e-5)


@pytest.mark.parametrize("x, kwargs, error, match", [
    (np.ones((5, 2), np.float32), {}, fnn.errors.LayerValueError, r"rank 3.*add a batch axis"),
    (np.ones((2, 5, 2), np.int32), {}, fnn.errors.LayerTypeError, "through fnn.Embedding"),
    (np.ones((2, 5, 2), np.float32), {"mask": np.ones((2, 4), bool)},
     fnn.errors.LayerValueError, r"mask must have shape \(batch, time\) = \(2, 5\)"),
    (np.ones((2, 5, 2), np.float32), {"mask": np.ones((2, 5))}, fnn.errors.LayerTypeError,
     "boolean"),
    (np.ones((2, 5, 2), np.float32), {"initial_state": np.zeros((2, 3))},
     fnn.errors.LayerValueError, r"initial_state must be shaped like"),
    (np.ones((2, 5, 3), np.float32), {}, fnn.errors.LayerValueError,
     r"params\['w_x'\] must have shape \(3, 16\)"),
])
def test_bad_input_is_a_layer_error(x, kwargs, error, match):
    params, _ = fnn.LSTM(H).init(KEY, jnp.ones((1, 2, 2)))
    with pytest.raises(error, match=match):
        fnn.LSTM(H).apply(params, {}, x, **kwargs)


def test_bad_hyperparameters():
    with pytest.raises(fnn.errors.LayerValueError, match="hidden must be a positive int"):
        fnn.GRU(0)
    with pytest.raises(fnn.errors.LayerValueError, match="unknown"):
        fnn.SimpleRNN(2, activation="tanhh")


def test_a_masked_lstm_learns_the_sign_of_a_variable_length_sum():
    # Needs memory over the whole real part of the sequence; the padding holds large noise,
    # which the mask must keep out.
    n, t = 256, 8
    x = RNG.normal(size=(n, t, 1)).astype(np.float32)
    lengths = RNG.integers(2, t + 1, size=n)
    mask = np.arange(t)[None, :] < lengths[:, None]
    y = ((x[..., 0] * mask).sum(axis=1) > 0).astype(np.int32)
    x[~mask, 0] = 10 * RNG.normal(size=(~mask).sum())
    model = fnn.Sequential([fnn.LSTM(16), fnn.Dense(2)])
    result = fnn.fit(model, "sparse_softmax_cross_entropy", fnn.optim.adam(0.02),
                     ((x, mask), y), epochs=25, batch_size=32, key=KEY, progress=False,
                     metrics=["accuracy"])
    assert result.history["accuracy"][-1] > 0.9


def test_a_mask_flows_from_embedding_through_stacked_layers():
    model = fnn.Sequential([fnn.Embedding(6, 3), fnn.LSTM(4, return_sequences=True),
                            fnn.GRU(2)])
    ids = RNG.integers(1, 6, size=(2, 5)).astype(np.int32)
    lengths = [5, 2]
    mask = np.arange(5)[None, :] < np.array(lengths)[:, None]
    params, _ = model.init(KEY, (ids, mask))
    padded = np.where(mask, ids, 0)                    # whatever the padding holds
    y, _ = jax.jit(model.apply)(params, {}, (padded, mask))
    for n, length in enumerate(lengths):               # each sequence alone, unpadded
        alone, _ = model.apply(params, {}, ids[n:n + 1, :length])
        np.testing.assert_allclose(y[n], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge", ["concat", "sum", "mean", "mul"])
def test_bidirectional_with_ragged_lengths_matches_numpy(merge):
    x = RNG.normal(size=(B, T, F)).astype(np.float32)
    lengths = np.array([5, 2, 4])
    mask = np.arange(T)[None, :] < lengths[:, None]
    layer = fnn.Bidirectional(fnn.GRU(H, return_sequences=True), merge=merge)
    params, _ = layer.init(KEY, x)
    params = {d: random_params(fnn.GRU(H), x) for d in ("forward", "backward")}
    (y, returned_mask), _ = jax.jit(layer.apply)(params, {}, (x, mask))
    np.testing.assert_array_equal(returned_mask, mask)
    combine = {"concat": lambda f, b: np.concatenate([f, b], -1), "sum": np.add,
               "mean": lambda f, b: (f + b) / 2, "mul": np.multiply}[merge]
    for n, length in enumerate(lengths):
        seq = x[n:n + 1, :length]
        fwd, _ = reference("gru", params["forward"], seq)
        bwd, _ = reference("gru", params["backward"], seq[:, ::-1])   # reversed within length
        expected = combine(fwd[0], bwd[0, ::-1])
        np.testing.assert_allclose(y[n, :length], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(y[n, length:], 0)


def test_bidirectional_last_states_and_errors():
    x = RNG.normal(size=(B, T, F)).astype(np.float32)
    layer = fnn.Bidirectional(fnn.LSTM(H, return_state=True))
    params, _ = layer.init(KEY, x)
    (y, (fwd_state, bwd_state)), _ = layer.apply(params, {}, x)
    ref_f, ref_f_state = reference("lstm", params["forward"], x)
    ref_b, ref_b_state = reference("lstm", params["backward"], x, reverse=True)
    np.testing.assert_allclose(y, np.concatenate([ref_f[:, -1], ref_b[:, 0]], -1), rtol=1e-5,
                               atol=1e-5)                   # PyTorch's h_n of both directions
    np.testing.assert_allclose(bwd_state[1], ref_b_state[1], rtol=1e-5, atol=1e-5)
    with pytest.raises(fnn.errors.LayerTypeError, match="must be a recurrent layer"):
        fnn.Bidirectional(fnn.Dense(3))
    with pytest.raises(fnn.errors.LayerValueError, match="merge must be one of"):
        fnn.Bidirectional(fnn.GRU(2), merge="avg")
    with pytest.raises(fnn.errors.LayerValueError, match=r"LSTM at path 'forward': .*rank 3"):
        layer.apply(params, {}, x[0])
