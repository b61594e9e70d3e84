"""fnn layers: immutable hyperparameter records with pure ``init`` / ``apply``.

See :mod:`fnn.layers.base` for the contract and ``docs/layers.md`` for a tour.
"""

from fnn.layers.activation import Activation, PReLU
from fnn.layers.base import Layer, ParameterFreeLayer, is_layer, layer_repr
from fnn.layers.dense import Dense
from fnn.layers.dropout import Dropout
from fnn.layers.flatten import Flatten
from fnn.layers.function import FunctionLayer, as_layer
from fnn.layers.sequential import Sequential

__all__ = [
    "Layer", "ParameterFreeLayer", "is_layer", "layer_repr", "Dense", "Activation", "PReLU", "Dropout", "Flatten",
    "Sequential", "FunctionLayer", "as_layer",
]
