"""What happens inside a model: layers' outputs, Grad-CAM at a layer, attention weights.

Layers are named by their path in ``params`` (``"body/conv2"`` with named
layers, ``"2"`` or the position ``2`` in an unnamed `fnn.Sequential`),
read through `fnn.layers.scope.intercept` while the model runs.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from fnn.caching import memoize
from fnn.explain import targets
from fnn.explain.gradients import explained_classes
from fnn.layers import scope
from fnn.layers.function import as_layer
from fnn.layers.sequential import Sequential


class Recorder(scope.Interceptor):
    """An interceptor that keeps the outputs of some layers (``paths=None``: all but the
    model's own), adds ``perturb[path]`` to those outputs, and keeps the sown values
    named in ``sown``."""

    def __init__(self, paths: Any = None, perturb: dict | None = None, sown: Sequence[str] = ()):
        self.paths = None if paths is None else set(paths)
        self.perturb = perturb or {}
        self.sown_names = tuple(sown)
        self.outputs: dict[str, Any] = {}
        self.kinds: dict[str, str] = {}
        self.sown: dict[str, Any] = {}

    def output(self, path: str, layer: Any, y: Any) -> Any:
        if path in self.perturb:
            y = y + self.perturb[path]
        if path and (self.paths is None or path in self.paths):
            self.outputs[path] = y
            self.kinds[path] = type(layer).__name__
        return y

    def wants(self, name: str) -> bool:
        return name in self.sown_names

    def sow(self, path: str, name: str, value: Any) -> None:
        if name in self.sown_names:
            self.sown[path] = value


def _apply(model: Any, params: Any, state: Any, x: Any) -> Any:
    return as_layer(model).apply(params, state, x, train=False)[0]


def layer_outputs(model: Any, params: Any, state: Any, x: Any) -> dict[str, tuple[str, Any]]:
    """``{path: (layer type, output struct)}`` of every layer, found without computing
    (`jax.eval_shape`), in the order the layers finish."""
    recorder = Recorder()

    def run(p, s, v):
        with scope.intercept(recorder):
            _apply(model, p, s, v)
        return recorder.outputs
    structs = jax.eval_shape(run, params, state, x)
    return {path: (recorder.kinds[path], structs[path]) for path in recorder.outputs}


def resolve_layer(model: Any, layer: Any, found: dict, where: str) -> str:
    """The path of ``layer`` (a path string, or a position in a top-level Sequential)."""
    if isinstance(layer, bool) or not isinstance(layer, (int, str)):
        raise TypeError(f"{where}: layer must be a path such as 'body/conv2' or a position "
                        f"in a Sequential, got {layer!r}")
    if isinstance(layer, int):
        model = as_layer(model)
        if not isinstance(model, Sequential):
            raise ValueError(f"{where}: layer={layer} is a position, which needs a Sequential "
                             f"model; name the layer by its path: one of {_listed(found)}")
        names = model.child_names
        if not -len(names) <= layer < len(names):
            raise ValueError(f"{where}: layer={layer} is out of range for a Sequential of "
                             f"{len(names)} layers")
        layer = names[layer]
    if layer not in found:
        raise ValueError(f"{where}: the model has no layer at path {layer!r}; its layers are "
                         f"{_listed(found)}")
    return layer


def _listed(found: dict) -> str:
    paths = [f"{p!r} ({kind})" for p, (kind, _) in found.items()]
    return ", ".join(paths[:30]) + (f", ... ({len(paths)} in all)" if len(paths) > 30 else "")


@memoize
def _intermediates_function(model: Any, paths: tuple | None):
    def run(params, state, x):
        recorder = Recorder(paths)
        with scope.intercept(recorder):
            _apply(model, params, state, x)
        return recorder.outputs
    return jax.jit(run)


def intermediates(model: Any, params: Any, state: Any, x: Any, *,
                  layers: Sequence[Any] | None = None) -> dict[str, Any]:
    """The output of every layer (or of ``layers``) on ``x``, by path, in evaluation mode.

    Args:
      model, params, state: the model.
      x: a batch.
      layers: paths (or positions in a top-level Sequential); ``None``: every
        layer inside the model.

    Returns:
      ``{path: output}`` in the order the layers finish (a container after its children).

    Raises:
      ValueError: a path that is not in the model (the message lists them).

    Examples:
      >>> model = fnn.Sequential([fnn.Dense(3), fnn.Activation("relu"), fnn.Dense(1)])
      >>> params, state = model.init(jax.random.key(0), jnp.zeros((2, 4)))
      >>> out = fnn.explain.intermediates(model, params, state, jnp.ones((2, 4)))
      >>> {path: y.shape for path, y in out.items()}
      {'0': (2, 3), '1': (2, 3), '2': (2, 1)}
    """
    found = layer_outputs(model, params, state, x)
    paths = None if layers is None else tuple(
        resolve_layer(model, layer, found, "intermediates") for layer in layers)
    return _intermediates_function(model, paths)(params, state, x)


@memoize
def _grad_cam_function(model: Any, spec: targets.Target, path: str, shape: tuple,
                       dtype: Any, size: tuple | None):
    def run(params, state, x, classes):
        classes = explained_classes(model, spec, params, state, x, classes)

        def score(delta):
            recorder = Recorder((path,), {path: delta})
            with scope.intercept(recorder):
                out = targets.select_output(_apply(model, params, state, x), spec.output,
                                            "grad_cam")
            return jnp.sum(targets.scores(out, classes, spec)), recorder.outputs[path]

        grads, activation = jax.grad(score, has_aux=True)(jnp.zeros(shape, dtype))
        spatial = tuple(range(1, activation.ndim - 1))
        weights = jnp.mean(grads, axis=spatial, keepdims=True)        # alpha_k
        cam = jax.nn.relu(jnp.sum(weights * activation, axis=-1))
        if size is not None:
            cam = jax.image.resize(cam, cam.shape[:1] + size, "linear")
        return cam
    return jax.jit(run)


def grad_cam(model: Any, params: Any, state: Any, x: Any, *, layer: Any, target: Any = None,
             upsample: bool = False, output: Any = None) -> jax.Array:
    """Grad-CAM (Selvaraju et al. 2017): where in a layer's feature maps the class is seen.

    Equation: for the feature maps ``A^k`` (channel ``k``) of the layer and
    the score ``S``, ``alpha_k = mean over positions of dS/dA^k`` and

        L = relu(sum_k alpha_k A^k)

    one map per example at the layer's spatial size. For a network ending in
    global average pooling and a Dense layer ``w`` this is CAM (Zhou et al.
    2016), ``relu(sum_k w_ck A^k)``, divided by the number of positions.

    Use it on the last convolutional layer of a CNN (coarse maps of where the
    evidence is); `integrated_gradients` gives pixel-level attributions.

    Args:
      model, params, state, target, output: as for `fnn.explain.saliency`.
      x: a batch.
      layer: the layer's path (``"body/conv2"``) or position in a top-level Sequential.
      upsample: resize the maps (linearly) to ``x``'s spatial size (``x`` one
        array ``(batch, *spatial, channels)``).

    Returns:
      ``(batch, *spatial)`` maps, non-negative.

    Raises:
      ValueError: a layer that does not exist, or whose output has no spatial
        axes (not ``(batch, *spatial, channels)``); a target out of range.

    Examples:
      >>> model = fnn.Sequential({"conv": fnn.Conv2D(2, 3, padding="same"),
      ...                         "pool": fnn.GlobalAvgPool(), "head": fnn.Dense(3)})
      >>> x = jax.random.normal(jax.random.key(0), (4, 8, 8, 1))
      >>> params, state = model.init(jax.random.key(1), x)
      >>> fnn.explain.grad_cam(model, params, state, x, layer="conv").shape
      (4, 8, 8)
    """
    where = "grad_cam"
    found = layer_outputs(model, params, state, x)
    path = resolve_layer(model, layer, found, where)
    kind, struct = found[path]
    if not hasattr(struct, "shape") or len(struct.shape) < 3:
        got = getattr(struct, "shape", type(struct).__name__)
        raise ValueError(f"{where}: the layer at path {path!r} ({kind}) outputs {got}, with no "
                         "spatial axes; Grad-CAM needs feature maps (batch, *spatial, "
                         "channels), e.g. a convolution's output")
    spec, classes, k = targets.resolve(model, params, state, x, target, output, where)
    if k is not None:
        raise ValueError(f"{where}: one target per example (an int or (batch,)); explain "
                         "several classes one call each")
    size = None
    if upsample:
        if not hasattr(x, "ndim") or x.ndim != len(struct.shape):
            raise ValueError(f"{where}: upsample=True needs one input (batch, *spatial, "
                             f"channels) with as many spatial axes as the layer's output "
                             f"{tuple(struct.shape)}, got {getattr(x, 'shape', type(x))}")
        size = tuple(x.shape[1:-1])
    return _grad_cam_function(model, spec, path, tuple(struct.shape), struct.dtype, size)(
        params, state, x, classes)


@memoize
def _attention_function(model: Any):
    def run(params, state, x):
        recorder = Recorder(paths=(), sown=("attention_weights",))
        with scope.intercept(recorder):
            _apply(model, params, state, x)
        return recorder.sown
    return jax.jit(run)


def attention_weights(model: Any, params: Any, state: Any, x: Any) -> dict[str, jax.Array]:
    """The attention weights of every `fnn.MultiHeadAttention` in the model, by path.

    Equation: ``A = softmax(q k^T / sqrt(d_k))`` over the keys each query may
    see (masks and causality applied), in evaluation mode (no dropout).

    Args:
      model, params, state: the model.
      x: a batch.

    Returns:
      ``{path: A}`` with ``A`` of shape ``(batch, heads, query_length, key_length)``;
      each row sums to 1.

    Raises:
      ValueError: the model has no MultiHeadAttention.

    Examples:
      >>> model = fnn.Sequential([fnn.TransformerEncoderBlock(num_heads=2, key_size=4,
      ...                                                     mlp_features=8)])
      >>> x = jnp.ones((3, 5, 8))
      >>> params, state = model.init(jax.random.key(0), x)
      >>> {p: a.shape for p, a in fnn.explain.attention_weights(model, params, state, x).items()}
      {'0/self_attention': (3, 2, 5, 5)}
    """
    weights = _attention_function(model)(params, state, x)
    if not weights:
        raise ValueError("attention_weights: the model has no MultiHeadAttention layer")
    return weights
