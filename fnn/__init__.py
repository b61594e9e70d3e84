"""fnn: a functional neural-network library on JAX.

Models are pure functions over parameter pytrees, ``jax.grad`` does
backpropagation, optimizers are hand-written gradient transformations, and
training steps are jit-compiled.
"""

__version__ = "0.1.0"

from fnn import errors
from fnn.errors import LayerTypeError, LayerValueError
from fnn.layers.base import Layer, is_layer

# --- foundation: functions (activations, initializers, losses, metrics, ...)
from fnn import activations

# --- foundation: layers, summary

# --- optim

# --- train
