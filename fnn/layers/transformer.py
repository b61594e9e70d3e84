"""Transformer encoder and decoder blocks (Vaswani et al. 2017), pre- or post-norm.

Both blocks keep the width ``d`` of their input ``(batch, time, d)``; they
are built from `fnn.MultiHeadAttention`, `fnn.LayerNorm` and
`fnn.Dense`, whose parameters they hold under readable names.

Masks travel with the data, so blocks stack in a `fnn.Sequential`:

- encoder: ``x`` or ``(x, mask)`` with ``mask`` boolean ``(batch, time)``,
  ``True`` at real steps (padded keys are hidden from every query); a pair
  in gives a pair out.
- decoder: ``(target, memory)``, where ``memory`` (the encoder's output) is
  an array or ``(memory, memory_mask)``; it returns ``(y, memory)`` so the
  next decoder block gets the same memory. Its self-attention is causal.

Use `fnn.EncoderDecoder` to train an encoder and a decoder as one
model on ``(source, target)`` inputs.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax

from fnn import activations
from fnn.errors import LayerValueError
from fnn.layers.attention import MultiHeadAttention
from fnn.layers.base import Layer, Params, State, check_input_values, input_struct
from fnn.layers.scope import child
from fnn.layers.dense import Dense
from fnn.layers.dropout import Dropout
from fnn.layers.normalization import LayerNorm
from fnn.layers.sequence_input import check_sequence, split_pair


def _split(layer: Any, x: Any, what: str) -> tuple[Any, Any]:
    return split_pair(layer, x, what)


def _key_mask(mask: Any) -> Any:
    """A ``(batch, kv_len)`` padding mask as an attention mask ``(batch, 1, 1, kv_len)``."""
    return None if mask is None else mask[:, None, None, :]


@dataclasses.dataclass(frozen=True)
class _Block(Layer):
    num_heads: int
    key_size: int
    mlp_features: int
    dropout_rate: float = 0.0
    norm_first: bool = True
    activation: Any = "relu"

    _attentions = ()   # the attention sublayers (set by each block)
    _causal = False    # whether "self_attention" hides later steps (the decoder's)

    def __post_init__(self):
        for name in ("num_heads", "key_size", "mlp_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise LayerValueError(self, f"{name} must be a positive int, got {value!r}")
        if not (isinstance(self.dropout_rate, numbers.Real) and 0 <= self.dropout_rate < 1):
            raise LayerValueError(self, f"dropout_rate must be in [0, 1), got "
                                  f"{self.dropout_rate!r}")
        try:
            activations.get(self.activation)
        except (ValueError, TypeError) as err:
            raise LayerValueError(self, str(err)) from None

    def _children(self, width: int) -> dict[str, Any]:
        """The sublayers, by parameter name (the width ``d`` comes from the input)."""
        children = {}
        for name in self._attentions:
            children[name] = MultiHeadAttention(self.num_heads, self.key_size,
                                                dropout_rate=self.dropout_rate,
                                                causal=name == "self_attention"
                                                and self._causal)
            children[name + "_norm"] = LayerNorm()
        children["mlp_hidden"] = Dense(self.mlp_features)
        children["mlp_output"] = Dense(width)
        children["mlp_norm"] = LayerNorm()
        return children

    def _run(self, name: str, fn: Any) -> Any:
        with child(name):
            return fn()

    def _check_width(self, x: Any) -> None:
        x = input_struct(x)
        check_sequence(self, x.shape, x.dtype, "a sequence batch")

    def _sublayer(self, params, name, x, fn, keys, train):
        """``x + dropout(fn(norm(x)))`` (pre-norm) or ``norm(x + dropout(fn(x)))``."""
        norm = LayerNorm()
        inner = self._run(name + "_norm", lambda: norm.apply(params[name + "_norm"], {}, x)[0]
                          ) if self.norm_first else x
        out = fn(inner)
        if train and self.dropout_rate > 0:
            out = Dropout(self.dropout_rate).apply({}, {}, out, key=next(keys), train=True)[0]
        y = x + out
        if not self.norm_first:
            y = self._run(name + "_norm", lambda: norm.apply(params[name + "_norm"], {}, y)[0])
        return y

    def _mlp(self, params, x, keys, train):
        width = x.shape[-1]
        children = self._children(width)
        h = self._run("mlp_hidden", lambda: children["mlp_hidden"].apply(
            params["mlp_hidden"], {}, x)[0])
        h = activations.get(self.activation)(h)
        if train and self.dropout_rate > 0:
            h = Dropout(self.dropout_rate).apply({}, {}, h, key=next(keys), train=True)[0]
        return self._run("mlp_output", lambda: children["mlp_output"].apply(
            params["mlp_output"], {}, h)[0])

    def _keys(self, key, train):
        if not (train and self.dropout_rate > 0):
            return iter(())
        if key is None:
            raise LayerValueError(self, "train=True with dropout_rate > 0 needs a PRNG key: "
                                  "apply(..., key=jax.random.key(seed), train=True)")
        return iter(jax.random.split(key, 8))

    def _init_children(self, key, inputs: dict[str, Any], width: int) -> Params:
        params = {}
        children = self._children(width)
        for i, (name, layer) in enumerate(children.items()):
            example = inputs.get(name, inputs["x"])
            params[name] = self._run(name, lambda: layer.init(jax.random.fold_in(key, i),
                                                              example)[0])
        return params


@dataclasses.dataclass(frozen=True)
class TransformerEncoderBlock(_Block):
    """Self-attention and a two-layer MLP, each inside a residual connection with a LayerNorm.

    Pre-norm (``norm_first=True``, the default; GPT-2, ViT):

        h = x + Dropout(MHA(LN(x)))
        y = h + Dropout(W_2 g(W_1 LN(h) + b_1) + b_2)

    post-norm (``norm_first=False``, the original paper):
    ``h = LN(x + Dropout(MHA(x)))``, ``y = LN(h + Dropout(MLP(h)))``.
    ``g`` is ``activation`` (ReLU by default), with dropout after it too.

    Parameters ``{"self_attention", "self_attention_norm", "mlp_hidden",
    "mlp_output", "mlp_norm"}`` (a `fnn.MultiHeadAttention`, two
    `fnn.LayerNorm` and two `fnn.Dense`). Input ``x`` or
    ``(x, mask)`` (see `fnn.layers.transformer`).

    Args:
      num_heads, key_size: the attention's heads and per-head size.
      mlp_features: the MLP's hidden size (often ``4 d``).
      dropout_rate: dropout on attention weights, residual branches and the MLP.
      norm_first: pre-norm (True) or post-norm (False).
      activation: the MLP's nonlinearity.

    Examples:
      >>> block = fnn.TransformerEncoderBlock(num_heads=2, key_size=4, mlp_features=16)
      >>> x = jnp.ones((3, 5, 8))
      >>> params, _ = block.init(jax.random.key(0), x)
      >>> sorted(params)
      ['mlp_hidden', 'mlp_norm', 'mlp_output', 'self_attention', 'self_attention_norm']
      >>> block.apply(params, {}, x)[0].shape
      (3, 5, 8)
    """

    _attentions = ("self_attention",)

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """The sublayers' parameters for inputs like ``x`` (or ``(x, mask)``)."""
        x, _ = _split(self, x, "x or a pair (x, mask)")
        self._check_width(x)
        x = input_struct(x)
        hidden = jax.ShapeDtypeStruct(x.shape[:-1] + (self.mlp_features,), x.dtype)
        return self._init_children(key, {"x": x, "mlp_output": hidden}, x.shape[-1]), {}

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """One encoder block; returns ``(y, state)`` (``((y, mask), state)`` for a pair)."""
        x, mask = _split(self, x, "x or a pair (x, mask)")
        self._check_width(x)
        keys = self._keys(key, train)
        attention = self._children(x.shape[-1])["self_attention"]
        h = self._sublayer(params, "self_attention", x, lambda a: self._run(
            "self_attention", lambda: attention.apply(
                params["self_attention"], {}, a, mask=_key_mask(mask),
                key=next(keys, None), train=train)[0]), keys, train)
        y = self._sublayer(params, "mlp", h, lambda a: self._mlp(params, a, keys, train), keys,
                           train)
        return ((y, mask) if mask is not None else y), state


@dataclasses.dataclass(frozen=True)
class TransformerDecoderBlock(_Block):
    """Causal self-attention, cross-attention to the encoder's output, and an MLP.

    Pre-norm (the default), with ``m`` the memory (the encoder's output):

        h1 = x + Dropout(CausalMHA(LN(x)))
        h2 = h1 + Dropout(MHA(LN(h1), m))
        y  = h2 + Dropout(MLP(LN(h2)))

    (post-norm with ``norm_first=False``, as in `TransformerEncoderBlock`).
    Input ``(target, memory)`` with ``memory`` an array or ``(memory,
    memory_mask)``; output ``(y, memory)``, so decoder blocks stack. Step
    ``t`` of ``y`` depends on target steps ``0..t`` only.

    Parameters ``{"self_attention", "self_attention_norm", "cross_attention",
    "cross_attention_norm", "mlp_hidden", "mlp_output", "mlp_norm"}``.

    Args: as `TransformerEncoderBlock`.

    Examples:
      >>> block = fnn.TransformerDecoderBlock(num_heads=2, key_size=4, mlp_features=16)
      >>> target, memory = jnp.ones((3, 4, 8)), jnp.ones((3, 6, 8))
      >>> params, _ = block.init(jax.random.key(0), (target, memory))
      >>> (y, same_memory), _ = block.apply(params, {}, (target, memory))
      >>> y.shape, same_memory is memory
      ((3, 4, 8), True)
    """

    _attentions = ("self_attention", "cross_attention")
    _causal = True

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """The sublayers' parameters for inputs like ``(target, memory)``."""
        target, memory = _split(self, x, "a pair (target, memory)")
        if memory is None:
            raise LayerValueError(self, "expected a pair (target, memory), got one array")
        memory_values, _ = _split(self, memory, "memory or (memory, memory_mask)")
        self._check_width(target)
        target = input_struct(target)
        hidden = jax.ShapeDtypeStruct(target.shape[:-1] + (self.mlp_features,), target.dtype)
        inputs = {"x": target, "cross_attention": (target, input_struct(memory_values)),
                  "mlp_output": hidden}
        return self._init_children(key, inputs, target.shape[-1]), {}

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """One decoder block; returns ``((y, memory), state)``."""
        target, memory = _split(self, x, "a pair (target, memory)")
        if memory is None:
            raise LayerValueError(self, "expected a pair (target, memory), got one array")
        memory_values, memory_mask = _split(self, memory, "memory or (memory, memory_mask)")
        self._check_width(target)
        keys = self._keys(key, train)
        children = self._children(target.shape[-1])
        h = self._sublayer(params, "self_attention", target, lambda a: self._run(
            "self_attention", lambda: children["self_attention"].apply(
                params["self_attention"], {}, a, key=next(keys, None), train=train)[0]),
            keys, train)
        h = self._sublayer(params, "cross_attention", h, lambda a: self._run(
            "cross_attention", lambda: children["cross_attention"].apply(
                params["cross_attention"], {}, (a, memory_values),
                mask=_key_mask(memory_mask), key=next(keys, None), train=train)[0]),
            keys, train)
        y = self._sublayer(params, "mlp", h, lambda a: self._mlp(params, a, keys, train), keys,
                           train)
        return (y, memory), state


@dataclasses.dataclass(frozen=True)
class EncoderDecoder(Layer):
    """An encoder and a decoder as one model on ``(source, target)`` inputs.

        memory = encoder(source)
        h = decoder((target_embedding(target), memory))    (its first element if a pair)
        y = head(h)

    ``target_embedding`` and ``head`` are optional (identity when ``None``).
    ``source`` may be a pair ``(ids, mask)``: an encoder built from layers
    that pass masks on returns ``(memory, mask)``, and the decoder's
    cross-attention then hides the padded source steps. Parameters
    ``{"encoder", "decoder"}`` plus ``"target_embedding"`` and ``"head"``
    when given; state likewise, only for parts with state. `fnn.fit`
    trains it with ``x = (source, target_in)`` (teacher forcing).

    Args:
      encoder: a layer from the source to the memory (e.g. a Sequential of an
        Embedding, a positional encoding and encoder blocks).
      decoder: a layer from ``(target, memory)`` to the decoded sequence (e.g. a
        Sequential of `TransformerDecoderBlock`).
      target_embedding: a layer applied to the target first (e.g. an Embedding
        and a positional encoding).
      head: a layer applied to the decoded sequence (e.g. ``Dense(vocab)``).

    Examples:
      >>> model = fnn.EncoderDecoder(
      ...     encoder=fnn.Sequential([fnn.Embedding(10, 8), fnn.SinusoidalPositionalEncoding(),
      ...                             fnn.TransformerEncoderBlock(2, 4, 16)]),
      ...     decoder=fnn.TransformerDecoderBlock(2, 4, 16),
      ...     target_embedding=fnn.Sequential([fnn.Embedding(10, 8),
      ...                                      fnn.SinusoidalPositionalEncoding()]),
      ...     head=fnn.Dense(10))
      >>> source, target = jnp.ones((2, 5), jnp.int32), jnp.ones((2, 3), jnp.int32)
      >>> params, _ = model.init(jax.random.key(0), (source, target))
      >>> sorted(params), model.apply(params, {}, (source, target))[0].shape
      (['decoder', 'encoder', 'head', 'target_embedding'], (2, 3, 10))
    """

    encoder: Any
    decoder: Any
    target_embedding: Any = None
    head: Any = None

    def _split(self, x: Any) -> tuple[Any, Any]:
        if not (isinstance(x, (tuple, list)) and len(x) == 2):
            raise LayerValueError(self, f"expected a pair (source, target), got "
                                  f"{type(x).__name__}")
        return x[0], x[1]

    def _run(self, name: str, fn: Any) -> Any:
        with child(name):
            return fn()

    def check_inputs(self, x: Any, where: str) -> None:
        """Host-side checks of concrete inputs (e.g. Embedding ids) for each part on its own
        input: the encoder on the source, ``target_embedding`` on the target."""
        source, target = self._split(x)
        check_input_values(self.encoder, source, f"{where} source")
        if self.target_embedding is not None:
            check_input_values(self.target_embedding, target, f"{where} target")

    def _parts(self) -> list[tuple[str, Any]]:
        parts = [("encoder", self.encoder), ("target_embedding", self.target_embedding),
                 ("decoder", self.decoder), ("head", self.head)]
        return [(name, layer) for name, layer in parts if layer is not None]

    def _forward(self, run_part: Any, x: Any) -> Any:
        """The data flow, with ``run_part(name, layer, input) -> output`` doing each part."""
        source, target = self._split(x)
        memory = run_part("encoder", self.encoder, source)
        if self.target_embedding is not None:
            target = run_part("target_embedding", self.target_embedding, target)
        h = run_part("decoder", self.decoder, (target, memory))
        if isinstance(h, tuple):
            h = h[0]
        return h if self.head is None else run_part("head", self.head, h)

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """Each part's parameters, on the shape it receives."""
        params, state, index = {}, {}, {name: i for i, (name, _) in enumerate(self._parts())}

        def run_part(name, layer, inputs):
            p, s = self._run(name, lambda: layer.init(jax.random.fold_in(key, index[name]),
                                                      inputs))
            params[name] = p
            if s:
                state[name] = s
            return self._run(name, lambda: jax.eval_shape(
                lambda p_, s_, x_: layer.apply(p_, s_, x_)[0], p, s, inputs))

        self._forward(run_part, x)
        return params, state

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False) -> tuple[Any, State]:
        """``head(decoder((target_embedding(target), encoder(source))))``; ``(y, state)``."""
        new_state, index = {}, {name: i for i, (name, _) in enumerate(self._parts())}
        expected = sorted(index)
        if not isinstance(params, dict) or sorted(params) != expected:
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys {expected}, got "
                                  f"{got}")

        def run_part(name, layer, inputs):
            part_key = None if key is None else jax.random.fold_in(key, index[name])
            y, s = self._run(name, lambda: layer.apply(params[name], state.get(name, {}),
                                                       inputs, key=part_key, train=train))
            if s:
                new_state[name] = s
            return y

        return self._forward(run_part, x), new_state
