"""How steps are dispatched: scan, unrolled chunks or step by step, per model and backend."""

import dataclasses

import numpy as np

import fnn
from train_setup import MODEL, fit


@dataclasses.dataclass(frozen=True)
class FakeConv(fnn.Layer):
    """Stands in for a convolution: marks itself slow inside XLA loops on CPU."""

    loop_friendly_on_cpu = False

    def init(self, key, x):
        return {}, {}

    def apply(self, params, state, x, *, key=None, train=False):
        return x, state


def test_strategy_prefers_unrolled_chunks_for_conv_models_on_cpu():
    from fnn.train import strategy
    conv_model = fnn.Sequential([FakeConv(), fnn.Sequential([FakeConv(), fnn.Dense(3)])])
    assert strategy.prefers_unrolled(conv_model, "cpu")
    assert not strategy.prefers_unrolled(conv_model, "gpu")
    assert not strategy.prefers_unrolled(MODEL, "cpu")
    assert strategy.resolve(conv_model, None, None, "cpu") == ("unroll", 1)  # step by step
    assert strategy.resolve(conv_model, "unroll", None, "cpu") == ("unroll", strategy.DEFAULT_UNROLL)
    assert strategy.resolve(conv_model, None, None, "tpu") == ("scan", None)
    assert strategy.resolve(MODEL, "scan", 4, "cpu") == ("scan", 4)
    # A conv-like model trains with fit on CPU through the unrolled path.
    result = fit(model=fnn.Sequential([FakeConv(), fnn.Dense(3)]), epochs=1)
    assert np.isfinite(result.history["loss"][0])
