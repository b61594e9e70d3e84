"""fnn layers: immutable hyperparameter records with pure ``init`` / ``apply``.

See `fnn.layers.base` for the contract and ``docs/layers.md`` for a tour.
"""

from fnn.layers.activation import Activation, PReLU
from fnn.layers.base import Layer, ParameterFreeLayer, is_layer, layer_repr
from fnn.layers.conv import Conv1D, Conv2D, Conv3D
from fnn.layers.conv_transpose import ConvTranspose1D, ConvTranspose2D, ConvTranspose3D
from fnn.layers.dense import Dense
from fnn.layers.dropout import Dropout
from fnn.layers.embedding import Embedding
from fnn.layers.recurrent import GRU, LSTM, SimpleRNN
from fnn.layers.bidirectional import Bidirectional
from fnn.layers.attention import MultiHeadAttention
from fnn.layers.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from fnn.layers.transformer import (EncoderDecoder, TransformerDecoderBlock,
                                    TransformerEncoderBlock)
from fnn.layers.flatten import Flatten
from fnn.layers.reshape import Permute, Reshape
from fnn.layers.function import FunctionLayer, as_layer
from fnn.layers.parallel import Parallel
from fnn.layers.pooling import (AvgPool1D, AvgPool2D, AvgPool3D, GlobalAvgPool, GlobalMaxPool,
                                MaxPool1D, MaxPool2D, MaxPool3D, MinPool1D, MinPool2D, MinPool3D)
from fnn.layers.residual import Residual
from fnn.layers.sequential import Sequential
from fnn.layers.batch_norm import BatchNorm
from fnn.layers.normalization import GroupNorm, LayerNorm, RMSNorm

__all__ = [
    "Conv1D", "Conv2D", "Conv3D", "ConvTranspose1D", "ConvTranspose2D", "ConvTranspose3D",
    "BatchNorm", "LayerNorm", "GroupNorm", "RMSNorm",
    "MaxPool1D", "MaxPool2D", "MaxPool3D", "MinPool1D", "MinPool2D", "MinPool3D", "AvgPool1D",
    "AvgPool2D", "AvgPool3D", "GlobalAvgPool", "GlobalMaxPool",
    "Layer", "ParameterFreeLayer", "is_layer", "layer_repr", "Dense", "Activation", "PReLU", "Dropout", "Flatten", "Reshape", "Permute",
    "Sequential", "FunctionLayer", "as_layer", "Residual", "Parallel", "Embedding",
    "SimpleRNN", "LSTM", "GRU", "Bidirectional", "MultiHeadAttention",
    "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "TransformerEncoderBlock",
    "TransformerDecoderBlock", "EncoderDecoder",
]
