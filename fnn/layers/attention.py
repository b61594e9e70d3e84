"""Multi-head scaled dot-product attention (Vaswani et al. 2017)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from fnn import initializers
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers import scope
from fnn.layers.base import Layer, Params, State, input_struct, resolve_initializers
from fnn.layers.sequence_input import check_sequence

_PROJECTIONS = ("query", "key", "value", "output")


def _split_inputs(layer: Any, x: Any) -> tuple[Any, Any, Any]:
    """``x`` (self-attention), ``(query, key_value)`` or ``(query, key, value)``."""
    if isinstance(x, (tuple, list)):
        if len(x) == 2:
            return x[0], x[1], x[1]
        if len(x) == 3:
            return tuple(x)
        raise LayerValueError(layer, f"expected x, (query, key_value) or (query, key, value), "
                              f"got a sequence of {len(x)} items")
    return x, x, x


@dataclasses.dataclass(frozen=True)
class MultiHeadAttention(Layer):
    """Multi-head attention: ``softmax(q k^T / sqrt(key_size)) v`` per head, heads concatenated.

        q = x_q w_q + b_q,  k = x_k w_k + b_k,  v = x_v w_v + b_v   (split into heads)
        A_h = softmax(q_h k_h^T / sqrt(key_size) + masked -> -inf)   (over the keys)
        y = concat_h(A_h v_h) w_o + b_o

    Called on one sequence ``x`` (self-attention), on a pair ``(query,
    key_value)`` (cross-attention, e.g. a decoder attending to an encoder) or
    on ``(query, key, value)``; each ``(batch, length, features)``.
    ``mask``: a boolean array broadcastable to ``(batch, heads, q_len,
    kv_len)``, ``True`` where a query may attend to a key (e.g. a padding
    mask ``m[:, None, None, :]``). ``causal=True`` also hides the keys after
    each query (``j > i``; queries and keys aligned at the start). A query that
    sees no key at all gets the mean of the values (as
    ``jax.nn.dot_product_attention``). ``dropout_rate`` drops attention
    weights in training (then ``apply`` needs a ``key``).

    Parameters ``{"query": {"w": (d_q, heads * key_size), "b"}, "key": {"w":
    (d_k, heads * key_size), "b"}, "value": {"w": (d_v, heads * value_size),
    "b"}, "output": {"w": (heads * value_size, out_features), "b"}}``, heads
    split by reshaping the last axis (head ``h`` owns columns ``h * key_size``
    to ``(h + 1) * key_size``). ``value_size`` defaults to ``key_size`` and
    ``out_features`` to the query's feature size. Without dropout and with
    ``value_size == key_size`` it runs through ``jax.nn.dot_product_attention``
    (fused kernels on GPU), else through the formula above.

    Args:
      num_heads: the number of heads.
      key_size: the size of each head's queries and keys.
      value_size: the size of each head's values (default ``key_size``).
      out_features: the output size (default: the query's features).
      dropout_rate: dropout on the attention weights in training.
      causal: hide later keys from each query.
      use_bias: biases on the four projections.
      w_init, b_init: initializers of the projections.

    Examples:
      >>> layer = fnn.MultiHeadAttention(num_heads=2, key_size=4)
      >>> x = jnp.ones((3, 5, 8))                          # (batch, time, features)
      >>> params, _ = layer.init(jax.random.key(0), x)
      >>> jax.tree.map(jnp.shape, params["query"])
      {'b': (8,), 'w': (8, 8)}
      >>> layer.apply(params, {}, x)[0].shape
      (3, 5, 8)
    """

    num_heads: int
    key_size: int
    value_size: int | None = None
    out_features: int | None = None
    dropout_rate: float = 0.0
    causal: bool = False
    use_bias: bool = True
    w_init: Any = initializers.glorot_uniform()
    b_init: Any = initializers.zeros()

    def __post_init__(self):
        for name in ("num_heads", "key_size", "value_size", "out_features"):
            value = getattr(self, name)
            if value is None and name in ("value_size", "out_features"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise LayerValueError(self, f"{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not (isinstance(self.dropout_rate, numbers.Real) and 0 <= self.dropout_rate < 1):
            raise LayerValueError(self, f"dropout_rate must be in [0, 1), got "
                                  f"{self.dropout_rate!r}")
        resolve_initializers(self, "w_init", "b_init")

    @property
    def _value_size(self) -> int:
        return self.value_size or self.key_size

    def _check_input(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
        check_sequence(self, shape, dtype, name, hint=False)

    def _shapes(self, q: Any, k: Any, v: Any) -> dict[str, tuple[int, int]]:
        hk, hv = self.num_heads * self.key_size, self.num_heads * self._value_size
        return {"query": (q.shape[-1], hk), "key": (k.shape[-1], hk),
                "value": (v.shape[-1], hv),
                "output": (hv, self.out_features or q.shape[-1])}

    def _checked_inputs(self, x: Any) -> tuple[Any, Any, Any]:
        q, k, v = _split_inputs(self, x)
        q, k, v = (input_struct(a) for a in (q, k, v))
        for name, a in zip(("query", "key", "value"), (q, k, v)):
            self._check_input(name, a.shape, a.dtype)
        if k.shape[:2] != v.shape[:2] or q.shape[0] != k.shape[0]:
            raise LayerValueError(self, f"query, key and value must share the batch size, and "
                                  f"key and value the length; got shapes {q.shape}, "
                                  f"{k.shape}, {v.shape}")
        return q, k, v

    def init(self, key: jax.Array, x: Any) -> tuple[Params, State]:
        """The four projections' ``{"w", "b"}`` for inputs like ``x``."""
        q, k, v = self._checked_inputs(x)
        dtype = jnp.promote_types(q.dtype, jnp.float32)
        params = {}
        for i, (name, shape) in enumerate(self._shapes(q, k, v).items()):
            kw, kb = jax.random.split(jax.random.fold_in(key, i))
            params[name] = {"w": self.w_init(kw, shape, dtype)}
            if self.use_bias:
                params[name]["b"] = self.b_init(kb, shape[1:], dtype)
        return params, {}

    def _check_params(self, params: Params, shapes: dict[str, tuple[int, int]]) -> None:
        if not isinstance(params, dict) or set(params) != set(_PROJECTIONS):
            got = sorted(params) if isinstance(params, dict) else type(params).__name__
            raise LayerValueError(self, f"params must be a dict with keys "
                                  f"{sorted(_PROJECTIONS)}, got {got}")
        for name, shape in shapes.items():
            got = jnp.shape(params[name].get("w")) if isinstance(params[name], dict) else None
            if got != shape:
                raise LayerValueError(self, f"params[{name!r}]['w'] must have shape {shape}, "
                                      f"got {got}")

    def _check_mask(self, mask: Any, batch: int, q_len: int, kv_len: int) -> Any:
        if mask is None:
            return None
        mask = jnp.asarray(mask)
        target = (batch, self.num_heads, q_len, kv_len)
        if mask.dtype != jnp.bool_:
            raise LayerTypeError(self, f"mask must be boolean (True: may attend), got dtype "
                                 f"{mask.dtype}")
        if mask.ndim > 4 or any(m not in (1, t) for m, t in zip(mask.shape[::-1],
                                                                 target[::-1])):
            raise LayerValueError(self, f"mask of shape {mask.shape} does not broadcast to "
                                  f"(batch, heads, q_len, kv_len) = {target}; a padding mask "
                                  f"(batch, kv_len) goes in as mask[:, None, None, :]")
        return jnp.broadcast_to(mask.reshape((1,) * (4 - mask.ndim) + mask.shape), target)

    def apply(self, params: Params, state: State, x: Any, *,
              key: jax.Array | None = None, train: bool = False,
              mask: Any = None) -> tuple[jax.Array, State]:
        """Attend from the queries to the keys; returns ``(y, state)`` (see the class doc)."""
        q_in, k_in, v_in = _split_inputs(self, x)
        q_in, k_in, v_in = (jnp.asarray(a) for a in (q_in, k_in, v_in))
        self._checked_inputs((q_in, k_in, v_in))
        self._check_params(params, self._shapes(q_in, k_in, v_in))
        batch, q_len, kv_len = q_in.shape[0], q_in.shape[1], k_in.shape[1]
        mask = self._check_mask(mask, batch, q_len, kv_len)
        dropout = train and self.dropout_rate > 0
        if dropout and key is None:
            raise LayerValueError(self, "train=True with dropout_rate > 0 needs a PRNG key: "
                                  "apply(..., key=jax.random.key(seed), train=True)")

        def project(name, a, size):
            p = params[name]
            y = a @ p["w"].astype(a.dtype)
            if self.use_bias:
                y = y + p["b"].astype(a.dtype)[None, None, :]
            return y.reshape(a.shape[0], a.shape[1], self.num_heads, size)

        q = project("query", q_in, self.key_size)                   # (batch, q_len, heads, k)
        k = project("key", k_in, self.key_size)
        v = project("value", v_in, self._value_size)
        if scope.wants("attention_weights"):     # fnn.explain.attention_weights asks
            scope.sow("attention_weights", self._weights(q, k, mask))
        if not dropout and self._value_size == self.key_size:
            out = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=self.causal)
        else:
            out = self._attend(q, k, v, mask, key if dropout else None)
        out = out.reshape(batch, q_len, self.num_heads * self._value_size)
        y = out @ params["output"]["w"].astype(out.dtype)
        if self.use_bias:
            y = y + params["output"]["b"].astype(out.dtype)[None, None, :]
        return y, state

    def _weights(self, q, k, mask):
        """``softmax(q k^T / sqrt(d_k))`` over the visible keys: ``(batch, heads, q, kv)``."""
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.key_size)
        visible = jnp.ones(logits.shape, bool) if mask is None else mask
        if self.causal:
            visible = visible & jnp.tril(jnp.ones(logits.shape[-2:], bool))[None, None]
        logits = jnp.where(visible, logits, jnp.finfo(logits.dtype).min)
        return jax.nn.softmax(logits, axis=-1)

    def _attend(self, q, k, v, mask, dropout_key):
        """The formula written out (value_size != key_size, or dropout on the weights)."""
        weights = self._weights(q, k, mask)
        if dropout_key is not None:
            keep = 1.0 - self.dropout_rate
            weights = jnp.where(jax.random.bernoulli(dropout_key, keep, weights.shape),
                                weights / keep, 0.0)
        return jnp.einsum("bhqk,bkhd->bqhd", weights, v)
