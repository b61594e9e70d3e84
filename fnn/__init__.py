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
from fnn import activations, losses, metrics, preprocessing, regularizers
from fnn.preprocessing import one_hot

# --- foundation: layers, summary
from fnn import initializers, layers
from fnn.layers import Permute, Reshape
from fnn.layers import (Activation, Dense, Dropout, Flatten, FunctionLayer, PReLU, Sequential,
                        as_layer)
from fnn.layers import Parallel, Residual
from fnn.layers import GRU, LSTM, Bidirectional, Embedding, SimpleRNN
from fnn.layers import MultiHeadAttention
from fnn.layers import (EncoderDecoder, LearnedPositionalEmbedding, SinusoidalPositionalEncoding,
                        TransformerDecoderBlock, TransformerEncoderBlock)
from fnn.layers import (Conv1D, Conv2D, Conv3D, ConvTranspose1D, ConvTranspose2D,
                        ConvTranspose3D)
from fnn.layers import BatchNorm, GroupNorm, LayerNorm, RMSNorm
from fnn.layers import (AvgPool1D, AvgPool2D, AvgPool3D, GlobalAvgPool, GlobalMaxPool, MaxPool1D,
                        MaxPool2D, MaxPool3D, MinPool1D, MinPool2D, MinPool3D)
from fnn.summary import count_params, summary, summary_rows

# --- optim
from fnn import optim

# --- train
from fnn import datasets
from fnn import train
from fnn.train import (EarlyStopping, cross_validate, evaluate, fit, fit_ensemble, predict,
                       sweep)

# --- explain predictions (attributions, layers' outputs)
from fnn import explain

# --- tuning on Optuna (the optional extra fnn[tune])
from fnn.tuning import TuneResult, tune

# --- checkpoints, runs from config files
from fnn import checkpoint
from fnn import run

# --- old module paths (fnn.metric_names, ...): aliases of the modules that moved
from fnn import moved_modules

moved_modules.install("fnn")
