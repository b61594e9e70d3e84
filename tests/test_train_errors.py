"""Bad input fails with a clear ValueError before anything compiles; NaN stops or is skipped."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from compile_events import programs_built

MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dropout(0.25), fnn.Dense(3)])
RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 20)
LOSS = fnn.losses.sparse_softmax_cross_entropy
KEY = jax.random.key(3)
OPT = fnn.optim.adam(0.01)


@contextlib.contextmanager
def no_compilation():
    """Fail if an XLA program is compiled (or loaded from the persistent cache) in the block."""
    with programs_built() as built:
        yield
    assert not built, f"a program was built before the error: {built}"


def fit(**overrides):
    args = dict(model=MODEL, loss=LOSS, optimizer=OPT, data=(X, Y), epochs=1, batch_size=8,
                key=KEY, progress=False)
    args.update(overrides)
    return fnn.fit(args.pop("model"), args.pop("loss"), args.pop("optimizer"), args.pop("data"),
                   **args)


BAD_INPUTS = [
    (dict(data=(X, Y[:19])), r"x has shape \(20, 5\) \(20 examples\), y has shape \(19,\)"),
    (dict(data=(X,)), r"data must be a pair \(x, y\)"),
    (dict(batch_size=21), r"batch_size=21 is larger than the number of examples \(20\)"),
    (dict(batch_size=0), r"batch_size must be a positive int or None, got 0"),
    (dict(batch_size=-4), r"batch_size must be a positive int"),
    (dict(batch_size=2.5), r"batch_size must be a positive int"),
    (dict(epochs=0), r"epochs must be a positive int, got 0"),
    (dict(accumulation_steps=9), r"accumulation_steps=9 is larger than the batch size \(8\)"),
    (dict(data=(X, Y.astype(np.float32))),
     r"sparse_softmax_cross_entropy needs integer class labels y, got y of dtype float32"),
    (dict(loss="softmax_cross_entropy", data=(X, np.eye(4, dtype=np.float32)[Y % 4])),
     r"rejects the model output of shape \(20, 3\) \(float32\) with targets y of shape \(20, 4\)"),
    (dict(loss="mse", data=(X, Y.astype(np.float32))),
     r"loss mse rejects the model output of shape \(20, 3\).*targets y of shape \(20,\)"),
    (dict(data=(X, Y + 1)), r"labels y must lie in \[0, 3\).*from 1 to 3"),
    (dict(validation_data=(X, Y - 1)),
     r"validation_data labels y must lie in \[0, 3\).*from -1 to 1"),
    (dict(loss="binary_cross_entropy_with_logits", model=fnn.Dense(1),
          data=(X, (Y[:, None] * 1.0).astype(np.float32))),
     r"labels y must lie in \[0, 1\] for loss binary_cross_entropy_with_logits.*from 0.0 to 2.0"),
    (dict(data=(X[:, :4], Y), params=MODEL.init(KEY, X)[0]),
     r"model cannot take x of shape \(20, 4\)"),
    (dict(validation_data=(X[:, :4], Y)), r"validation_data x has example shape \(4,\)"),
    (dict(loss="banana"), r"unknown loss 'banana'"),
    (dict(metrics=["accuracy", "accuracy"]), r"'accuracy' is reserved or given twice"),
    (dict(key=0), r"key must be a PRNG key"),
    (dict(strategy="fast"), r"strategy must be one of"),
]


@pytest.mark.parametrize("overrides, message", BAD_INPUTS,
                         ids=[m[:30] for _, m in BAD_INPUTS])
def test_bad_input_raises_before_compiling(overrides, message):
    with no_compilation(), pytest.raises(ValueError, match=message):
        fit(**overrides)


MISTAKES = [
    (dict(data=LOSS, loss=(X, Y), optimizer=OPT),            # Keras's order
     r"the arguments are fit\(model, loss, optimizer, \(x, y\), ...\) \(loss and optimizer "
     r"before the data.*got the data \(x, y\) as loss"),
    (dict(data=OPT, loss=(X, Y), optimizer=LOSS), r"got the data \(x, y\) as loss and an "
                                                  r"optimizer as data"),
    (dict(optimizer=fnn.optim.adam), r"optimizer is the function fnn.optim.adam, not an "
                                     r"optimizer: did you forget to call it\? e.g. "
                                     r"fnn.optim.adam\(1e-3\)"),
]


@pytest.mark.parametrize("overrides, message", MISTAKES, ids=["keras order", "all swapped",
                                                              "uncalled optimizer"])
def test_common_mistakes_get_errors_that_say_what_to_do(overrides, message):
    with no_compilation(), pytest.raises(TypeError, match=message):
        fit(**overrides)


def test_a_model_that_cannot_take_the_data_gets_no_advice_about_params():
    conv = fnn.Sequential([fnn.Conv2D(2, (3, 3)), fnn.Flatten(), fnn.Dense(3)])
    with no_compilation(), pytest.raises(ValueError, match=r"model.init fails for x of shape "
                                                           r"\(20, 5\)") as error:
        fit(model=conv)
    assert "params=..." not in str(error.value) and "Pass params" not in str(error.value)


def test_a_shape_instead_of_an_example_input_says_what_to_pass():
    conv = fnn.Sequential([fnn.Conv2D(2, (3, 3)), fnn.Flatten(), fnn.Dense(3)])
    expected = (r"got the shape \(8, 8, 1\), not an example input: pass an example batch, e.g. "
                r"jnp.zeros\(\(1,\) \+ \(8, 8, 1\)\), or a jax.ShapeDtypeStruct")
    with pytest.raises(fnn.LayerTypeError, match="Sequential .*init " + expected):
        conv.init(KEY, (8, 8, 1))
    with pytest.raises(TypeError, match="summary " + expected):
        fnn.summary(conv, (8, 8, 1))
    assert fnn.summary(conv, jnp.zeros((1, 8, 8, 1)))        # the suggested fix works


def test_evaluate_and_predict_check_their_input():
    params, state = MODEL.init(KEY, X)
    with no_compilation(), pytest.raises(ValueError, match=r"x has shape \(20, 5\)"):
        fnn.evaluate(MODEL, params, state, (X, Y[:3]), loss=LOSS)
    with no_compilation(), pytest.raises(ValueError, match="model cannot take x"):
        fnn.evaluate(MODEL, params, state, (X[:, :2], Y), loss=LOSS)
    with no_compilation(), pytest.raises(ValueError, match=r"evaluate: labels y must lie in"):
        fnn.evaluate(MODEL, params, state, (X, Y + 1), loss=LOSS)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        fnn.predict(MODEL, params, state, X, batch_size=0)


def nan_step(epoch_key, position, batch_size=8, n=20):
    """Index of the step (within its epoch) whose batch holds example ``position``."""
    shuffle_key, _ = jax.random.split(epoch_key)
    perm = np.asarray(fnn.train.shuffled_indices(shuffle_key, n))
    return int(np.flatnonzero(perm == position)[0]) // batch_size


SENTINEL = 12345.0


def poisoned(value):
    """Data whose example 5 turns into ``value`` (NaN/inf) inside the compiled step: fit
    refuses non-finite x up front, so the NaN enters through ``augment``, as a NaN born
    during training would."""
    x = X.copy()
    x[5, 2] = SENTINEL
    return dict(data=(x, Y), augment=lambda key, b: jnp.where(b == SENTINEL, value, b))


def test_non_finite_inputs_are_refused_before_compiling():
    x = X.copy()
    x[7, 3] = np.nan
    with no_compilation(), pytest.raises(ValueError, match=r"data x has a non-finite value "
                                         r"\(nan\) at row 7, position \(3,\) \(x\[7, 3\]\)"):
        fit(data=(x, Y))
    x[7, 3], xv = 1.0, X[:6].copy()
    xv[4, 0] = -np.inf
    with no_compilation(), pytest.raises(ValueError, match=r"validation_data x has a "
                                         r"non-finite value \(-inf\) at row 4"):
        fit(data=(x, Y), validation_data=(xv, Y[:6]))


def test_nan_loss_raises_naming_epoch_and_step():
    # inf passes relu as +inf; the outputs mix +inf and -inf: NaN loss
    _, loop_key = jax.random.split(KEY)
    step = nan_step(jax.random.fold_in(loop_key, 0), 5)
    with pytest.raises(FloatingPointError, match=rf"at epoch 0 .*step {step} of that epoch"):
        fit(**poisoned(np.inf), epochs=3)


def test_nan_parameters_behind_a_finite_loss_raise_naming_the_epoch():
    # relu(NaN) == 0: the loss stays finite, but the gradient x^T delta is NaN.
    with pytest.raises(FloatingPointError, match=r"parameters became NaN or infinite during "
                                                 r"epoch 0"):
        fit(**poisoned(np.nan), epochs=3)


def test_divergence_in_a_later_epoch_names_that_epoch():
    # Update 4 uses an infinite learning rate: the parameters become inf/NaN and the loss
    # of update 5 is the first non-finite one; 3 steps per epoch: epoch 1, step 2.
    opt = fnn.optim.sgd(lambda count: jnp.where(count >= 4, jnp.inf, 0.01))
    with pytest.raises(FloatingPointError, match=r"at epoch 1 .*step 2 of that epoch"):
        fit(optimizer=opt, epochs=4)


def test_skip_nonfinite_optimizer_skips_and_reports_instead_of_raising():
    opt = fnn.optim.skip_nonfinite(fnn.optim.adam(0.01))
    result = fit(**poisoned(np.nan), optimizer=opt, epochs=3)
    assert result.history["skipped"] == [1.0, 1.0, 1.0]  # one bad batch per epoch
    assert all(np.isfinite(result.history["loss"]))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(result.params))
    count = fnn.optim.find_states(result.opt_state, fnn.optim.ScaleByAdamState)[0].count
    assert int(count) == 3 * 3 - 3  # the skipped updates left Adam's state untouched
    more = fit(**poisoned(np.nan), optimizer=opt, epochs=1, params=result.params,
               opt_state=result.opt_state)
    assert more.history["skipped"] == [1.0]  # per epoch, not the running total (4)
