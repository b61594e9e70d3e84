"""Where a layer runs inside its model, and a way to read (or perturb) what it computes.

A container runs each child inside `child`::

    with child(name):
        y, s = layer.apply(params[name], state.get(name, {}), x, ...)

which does two things:

- a `fnn.errors.LayerValueError` / ``LayerTypeError`` raised inside
  gets ``name`` prepended to its path, so the message names the layer by its
  path in ``params`` (``Dense at path 'body/1': ...``);
- the *path* of the running layer (the names from the model down to it,
  ``("body", "conv2")``) is known while it runs.

The path is what `intercept` uses. Inside ``with intercept(obj):``
every `fnn.layers.base.Layer`'s ``apply`` hands its output to
``obj.output(path, layer, y)`` and continues with what that returns, and a
layer may hand an internal value (a `fnn.MultiHeadAttention`'s
attention weights) to ``obj.sow(path, name, value)`` through `sow`.
This is how `fnn.explain` reads the output of the layer at
``"body/conv2"`` (Grad-CAM differentiates with respect to it by adding a
zero it can differentiate) and how `fnn.train.Monitor` reads every
activation layer's output inside the compiled training step.

Interception happens while a function is *traced*: the values an
interceptor collects are arrays of that trace, and the function that opened
``intercept`` must return them (it stays pure: nothing survives the call).
Nothing is intercepted outside the ``with`` block, so models cost nothing
extra without it. A layer that calls another layer inline, without
`child` (a transformer block's dropout), runs at its own path and is
not reported separately; nor is a layer calling its own ``apply`` again.
A layer that runs children inside ``lax.scan`` or ``vmap`` of its own must
not expose their values (they belong to the inner trace); fnn's layers do
not.

Examples:
  >>> class Outputs(fnn.layers.scope.Interceptor):
  ...     def __init__(self): self.seen = {}
  ...     def output(self, path, layer, y):
  ...         self.seen[path] = y.shape
  ...         return y
  >>> model = fnn.Sequential({"body": fnn.Sequential([fnn.Dense(4), fnn.Activation("relu")]),
  ...                         "head": fnn.Dense(1)})
  >>> params, state = model.init(jax.random.key(0), jnp.zeros((2, 3)))
  >>> outputs = Outputs()
  >>> with fnn.layers.scope.intercept(outputs):
  ...     y, _ = model.apply(params, state, jnp.ones((2, 3)))
  >>> outputs.seen
  {'body/0': (2, 4), 'body/1': (2, 4), 'body': (2, 4), 'head': (2, 1), '': (2, 1)}
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Any, Callable, Iterator

from fnn.errors import LayerError

_PATH: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "fnn_layer_path", default=())
_RUNNING: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "fnn_running_layer_path", default=None)
_INTERCEPTOR: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "fnn_layer_interceptor", default=None)


class Interceptor:
    """What `intercept` calls: ``output`` for each layer's output, ``sow`` for the
    internal values layers offer (``wants(name)`` says whether to compute them).

    The defaults change nothing and ask for nothing; subclasses override what they need.
    """

    def output(self, path: str, layer: Any, y: Any) -> Any:
        """The value the model continues with in place of ``layer``'s output ``y``."""
        del path, layer
        return y

    def sow(self, path: str, name: str, value: Any) -> None:
        """Receive the internal value ``name`` of the layer at ``path``."""
        del path, name, value

    def wants(self, name: str) -> bool:
        """Whether to compute the internal value ``name`` (only to sow it)."""
        del name
        return False


def path_string(path: tuple[str, ...]) -> str:
    """``("body", "conv2")`` -> ``"body/conv2"`` (the model itself: ``""``)."""
    return "/".join(path)


@contextlib.contextmanager
def child(name: Any) -> Iterator[None]:
    """Run a container's child called ``name``: its errors and its path gain ``name``.

    Args:
      name: the child's key in ``params`` (converted to ``str``).
    """
    token = _PATH.set(_PATH.get() + (str(name),))
    try:
        yield
    except LayerError as err:
        raise err.with_parent(str(name)).with_traceback(err.__traceback__) from None
    finally:
        _PATH.reset(token)


def current_path() -> str:
    """The path of the layer running now (``""`` at the model itself)."""
    return path_string(_PATH.get())


@contextlib.contextmanager
def intercept(interceptor: Interceptor) -> Iterator[Interceptor]:
    """Hand every layer's output (and sown values) to ``interceptor`` inside the block.

    Args:
      interceptor: an `Interceptor` (``output(path, layer, y) -> y``,
        ``sow(path, name, value)``, ``wants(name) -> bool``).

    Returns:
      A context manager giving ``interceptor``. Blocks nest: the inner one
      wins while it is open.
    """
    token = _INTERCEPTOR.set(interceptor)
    outer = _RUNNING.set(None)
    try:
        yield interceptor
    finally:
        _RUNNING.reset(outer)
        _INTERCEPTOR.reset(token)


def sow(name: str, value: Any) -> None:
    """Offer the running layer's internal value ``name`` to the interceptor (if any)."""
    interceptor = _INTERCEPTOR.get()
    if interceptor is not None:
        interceptor.sow(current_path(), name, value)


def wants(name: str) -> bool:
    """Whether an interceptor is open that asks for the internal value ``name``.

    A layer computes a value only to sow it (attention weights that its fast
    path never forms) when this is true.
    """
    interceptor = _INTERCEPTOR.get()
    return interceptor is not None and bool(interceptor.wants(name))


def intercepted(apply: Callable) -> Callable:
    """Wrap a layer class's ``apply`` so an open `intercept` sees its output."""
    @functools.wraps(apply)
    def apply_with_interception(self, params, state, x, *args, **kwargs):
        interceptor = _INTERCEPTOR.get()
        path = _PATH.get()
        if interceptor is None or _RUNNING.get() == path:
            return apply(self, params, state, x, *args, **kwargs)
        token = _RUNNING.set(path)
        try:
            y, new_state = apply(self, params, state, x, *args, **kwargs)
        finally:
            _RUNNING.reset(token)
        return interceptor.output(path_string(path), self, y), new_state
    apply_with_interception.intercepted = True
    return apply_with_interception
