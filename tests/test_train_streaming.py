"""Streamed training (fnn.train.streaming): memory-mapped arrays and iterables of batches give
the in-memory fit's numbers bit for bit; bad batches, failing loaders and Ctrl-C end with a
clear error and no thread left behind."""

import _thread
import hashlib
import threading

import jax
import numpy as np
import pytest

import fnn
from fnn.train import streaming

MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dropout(0.25), fnn.Dense(3)])
LOSS = "sparse_softmax_cross_entropy"
RNG = np.random.default_rng(0)
X = RNG.normal(size=(21, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 21).astype(np.int32)
KEY = jax.random.key(3)
FIT = dict(epochs=3, batch_size=4, key=KEY, progress=False, metrics=["accuracy", "f1_macro"])


@pytest.fixture(scope="module")
def memmaps(tmp_path_factory):
    folder = tmp_path_factory.mktemp("memmap")
    np.save(folder / "x.npy", X)
    np.save(folder / "y.npy", Y)
    return (np.load(folder / "x.npy", mmap_mode="r"), np.load(folder / "y.npy", mmap_mode="r"),
            folder)


@pytest.fixture(scope="module")
def in_memory():
    return fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), **FIT)


def assert_same_fit(a, b):
    assert a.history == b.history                    # every float, exactly
    for u, v in zip(jax.tree.leaves((a.params, a.state, a.opt_state)),
                    jax.tree.leaves((b.params, b.state, b.opt_state))):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def no_prefetch_threads():
    return not [t for t in threading.enumerate() if t.name == "fnn-prefetch"]


def in_memory_batches(epoch, n=21, batch_size=4):
    """The batches of the in-memory path's epoch ``epoch`` (module docstring of fnn.train.fit)."""
    _, loop_key = jax.random.split(KEY)
    shuffle_key, _ = jax.random.split(jax.random.fold_in(loop_key, epoch))
    perm = np.asarray(fnn.train.shuffled_indices(shuffle_key, n))
    return [(X[perm[i:i + batch_size]], Y[perm[i:i + batch_size]])
            for i in range(0, n, batch_size)]


@pytest.mark.default_codegen
@pytest.mark.parametrize("steps_per_block", [None, 1, 2], ids=["one_block", "1", "2"])
def test_a_streamed_memmap_fit_equals_the_in_memory_fit_bit_for_bit(memmaps, in_memory,
                                                                    monkeypatch, steps_per_block):
    xm, ym, folder = memmaps
    if steps_per_block:                   # several blocks per epoch (batches of 4 x 24 bytes)
        monkeypatch.setattr(streaming, "STREAM_BLOCK_BYTES", steps_per_block * 4 * 24)
    before = hashlib.sha256((folder / "x.npy").read_bytes()).hexdigest()
    streamed = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (xm, ym), stream=True, **FIT)
    assert_same_fit(in_memory, streamed)
    assert hashlib.sha256((folder / "x.npy").read_bytes()).hexdigest() == before
    assert no_prefetch_threads()


@pytest.mark.parametrize("options", [dict(shuffle=False), dict(drop_remainder=True, prefetch=1)],
                         ids=["in_order", "drop_remainder"])
def test_streaming_keeps_the_order_and_partial_batch_rules(memmaps, options):
    xm, ym, _ = memmaps
    kw = {**FIT, "metrics": [], **options}
    a = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), **kw)
    b = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (xm, ym), stream=True, **kw)
    assert_same_fit(a, b)


def test_an_iterable_of_the_in_memory_batches_equals_the_in_memory_fit(in_memory):
    epochs = iter(range(3))

    def batches():                       # a generator function: called afresh per epoch
        yield from in_memory_batches(next(epochs))
    streamed = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), batches,
                       **{**FIT, "batch_size": None})
    assert_same_fit(in_memory, streamed)


@pytest.mark.default_codegen
def test_a_chunked_model_streams_in_its_own_chunks_bit_for_bit(memmaps):
    xm, ym, _ = memmaps
    kw = {**FIT, "strategy": "unroll", "steps_per_dispatch": 2}
    a = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), **kw)
    b = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (xm, ym), stream=True, **kw)
    assert_same_fit(a, b)


def test_large_numpy_data_is_streamed_automatically_small_data_is_not(monkeypatch, memmaps):
    xm, ym, _ = memmaps
    assert streaming.kind_of("fit", (xm, ym), None) == "memory"
    monkeypatch.setattr(streaming, "STREAM_THRESHOLD_BYTES", X.nbytes)
    assert streaming.kind_of("fit", (xm, ym), None) == "array"
    assert streaming.kind_of("fit", (jax.numpy.asarray(X), jax.numpy.asarray(Y)), None) == \
        "memory"                             # already on the device
    assert streaming.kind_of("fit", (xm, ym), False) == "memory"
    with pytest.raises(ValueError, match="stream=False needs"):
        streaming.kind_of("fit", [(X, Y)] * 3, False)


class Tensor:
    """Stands for a PyTorch CPU tensor: numpy reads it through __array__."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a


def test_steps_per_epoch_reads_one_endless_iterator_across_epochs():
    read = []

    def endless():
        i = 0
        while True:
            read.append(i)
            rows = np.arange(i * 4, i * 4 + 4) % 21
            yield Tensor(X[rows]), Tensor(Y[rows])
            i += 1
    result = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), endless(), epochs=3, batch_size=None,
                     key=KEY, progress=False, steps_per_epoch=5)
    assert len(result.history["loss"]) == 3
    assert read == list(range(15))           # no batch read twice, none past the last epoch
    assert no_prefetch_threads()


def fit_batches(batches, **kw):
    return fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), batches, key=KEY, progress=False,
                   **{"epochs": 1, "batch_size": None, **kw})


def test_a_batch_of_another_shape_names_the_epoch_step_and_both_shapes():
    batches = [(X[:4], Y[:4]), (X[4:8], Y[4:8]), (X[8:12, :4], Y[8:12])]
    with pytest.raises(ValueError, match=r"epoch 0, step 2 has .*\(4, 4\) float32.*first batch "
                                         r"had .*\(4, 5\) float32"):
        fit_batches(batches)
    bad = [(X[:4], Y[:4]), (X[4:8], Y[4:8].astype(np.float32)), (X[8:12], Y[8:12])]
    with pytest.raises(ValueError, match="step 1 has"):
        fit_batches(bad)
    assert no_prefetch_threads()


def test_labels_out_of_range_in_a_streamed_batch_name_the_step(memmaps):
    labels = Y.copy()
    labels[13] = 7
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, 3\).*epoch 0, step 3"):
        fit_batches([(X[i:i + 4], labels[i:i + 4]) for i in range(0, 20, 4)])
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, 3\).*epoch 0, step"):
        fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, labels), epochs=1, batch_size=4, key=KEY,
                progress=False, stream=True, shuffle=False)


def test_a_loader_that_raises_mid_epoch_is_re_raised_with_the_epoch_and_step():
    class LoaderError(Exception):
        pass

    def batches():
        for i in range(0, 20, 4):
            if i == 12:
                raise LoaderError("disk went away")
            yield X[i:i + 4], Y[i:i + 4]
    with pytest.raises(LoaderError, match="disk went away") as info:
        fit_batches(batches, epochs=2)
    assert any("epoch 0 (counting from 0), step 3" in note for note in info.value.__notes__)
    assert no_prefetch_threads()


def test_ctrl_c_during_a_streamed_epoch_stops_the_reader_thread():
    def batches():
        for i in range(0, 20, 4):
            if i == 8:
                _thread.interrupt_main()      # what Ctrl-C does: KeyboardInterrupt in main
            yield X[i:i + 4], Y[i:i + 4]
        while True:                        # a loader that would never end by itself
            yield X[:4], Y[:4]
    with pytest.raises(KeyboardInterrupt):
        fit_batches(batches, steps_per_epoch=10_000)
    assert no_prefetch_threads()


def test_iterables_that_end_early_or_yield_nothing_or_are_read_once():
    with pytest.raises(ValueError, match="yielded no batches"):
        fit_batches(lambda: iter([]))
    with pytest.raises(ValueError, match=r"ended after 5 batches in epoch 0 .*steps_per_epoch=6"):
        fit_batches(lambda: iter([(X[i:i + 4], Y[i:i + 4]) for i in range(0, 20, 4)]),
                    steps_per_epoch=6)
    with pytest.raises(ValueError, match="can be read once, but 2 epochs"):
        fit_batches(iter([(X[:4], Y[:4])]), epochs=2)
    with pytest.raises(ValueError, match="batch_size=8, but the iterable's first batch holds 4"):
        fit_batches([(X[:4], Y[:4])] * 3, batch_size=8)
    with pytest.raises(ValueError, match="sample_weight= needs"):
        fit_batches([(X[:4], Y[:4])] * 3, sample_weight=np.ones(21))
    with pytest.raises(ValueError, match="streamed data needs a batch_size"):
        fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (X, Y), epochs=1, batch_size=None, key=KEY,
                progress=False, stream=True)
    assert no_prefetch_threads()


def test_prefetcher_propagates_errors_and_stops_when_closed_early():
    def slow(i):
        return i
    with fnn.train.prefetch.Prefetcher(iter(range(1000)), slow, depth=2) as items:
        assert next(items) == 0                 # then leave with the producer blocked
    assert no_prefetch_threads()

    def broken(i):
        if i == 2:
            raise OSError("bad sector")
        return i
    items = fnn.train.prefetch.Prefetcher(iter(range(5)), broken)
    assert [next(items), next(items)] == [0, 1]
    with pytest.raises(OSError, match="bad sector"):
        next(items)
    assert no_prefetch_threads()


def test_evaluate_and_predict_stream_memmaps_and_iterables(memmaps, in_memory):
    xm, ym, _ = memmaps
    params, state = in_memory.params, in_memory.state
    kw = dict(loss=LOSS, metrics=["accuracy", "f1_macro"])
    whole = fnn.evaluate(MODEL, params, state, (X, Y), **kw)
    streamed = fnn.evaluate(MODEL, params, state, (xm, ym), batch_size=4, stream=True, **kw)
    batches = fnn.evaluate(MODEL, params, state,
                           lambda: ((X[i:i + 5], Y[i:i + 5]) for i in range(0, 21, 5)), **kw)
    assert streamed.keys() == whole.keys() == batches.keys()
    for name in whole:        # a mean of batch means against one mean: equal up to rounding
        np.testing.assert_allclose([streamed[name], batches[name]], whole[name], rtol=1e-6)
    out = np.asarray(fnn.predict(MODEL, params, state, X))
    for got in (fnn.predict(MODEL, params, state, xm, batch_size=4, stream=True),
                fnn.predict(MODEL, params, state, iter([X[:8], X[8:16], X[16:]])),
                fnn.predict(MODEL, params, state, lambda: iter([(X[:8], Y[:8]), (X[8:], Y[8:])])),
                fnn.predict(MODEL, params, state,     # [x, y] lists, as PyTorch's DataLoader
                            lambda: iter([[Tensor(X[:8]), Tensor(Y[:8])],
                                          [Tensor(X[8:]), Tensor(Y[8:])]]))):
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, out, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="streamed data needs a batch_size"):
        fnn.evaluate(MODEL, params, state, (xm, ym), stream=True, **kw)
    labels = Y.copy()
    labels[9] = 5
    with pytest.raises(ValueError, match=r"labels y must lie in \[0, 3\).*epoch 0, step 2"):
        fnn.evaluate(MODEL, params, state, (X, labels), batch_size=4, stream=True, **kw)
    assert no_prefetch_threads()


def test_streamed_validation_data_gives_the_in_memory_validation_numbers(memmaps):
    xm, ym, _ = memmaps
    kw = {**FIT, "epochs": 2, "metrics": ["accuracy"]}
    a = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), validation_data=(X, Y), **kw)
    b = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), validation_data=(xm, ym), stream=True,
                **kw)
    c = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), **kw,
                validation_data=lambda: ((X[i:i + 6], Y[i:i + 6]) for i in range(0, 21, 6)))
    for other in (b, c):
        assert other.history["loss"] == a.history["loss"]
        for name in ("val_loss", "val_accuracy"):
            np.testing.assert_allclose(other.history[name], a.history[name], rtol=1e-6)
    with pytest.raises(ValueError, match="validation_data is an iterator"):
        fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (X, Y), validation_data=iter([(X, Y)]), **kw)


class Interrupt(Exception):
    pass


def stop_at(epoch):
    def callback(e, logs):
        if e == epoch:
            raise Interrupt
    return callback


def test_a_streamed_fit_interrupted_and_resumed_equals_the_uninterrupted_one(memmaps, tmp_path,
                                                                             in_memory):
    xm, ym, _ = memmaps
    kw = dict(FIT, stream=True, checkpoint_dir=tmp_path)
    with pytest.raises(Interrupt):
        fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (xm, ym), callbacks=[stop_at(1)], **kw)
    assert fnn.checkpoint.Manager(tmp_path).epochs() == [0]
    resumed = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), (xm, ym), resume=True, **kw)
    assert_same_fit(in_memory, resumed)
    place = fnn.checkpoint.info(fnn.checkpoint.Manager(tmp_path).latest()).config["stream"]
    assert place == {"epoch": 3, "step": 0}


def test_an_iterator_that_cannot_be_repositioned_resumes_with_a_warning(tmp_path):
    def endless():
        while True:
            yield X[:4], Y[:4]
    kw = dict(epochs=2, batch_size=None, key=KEY, progress=False, steps_per_epoch=2,
              checkpoint_dir=tmp_path)
    with pytest.raises(Interrupt):
        fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), endless(), callbacks=[stop_at(1)], **kw)
    with pytest.warns(RuntimeWarning, match="cannot be repositioned"):
        fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), endless(), resume=True, **kw)


def test_the_progress_bar_counts_the_steps_of_a_streamed_epoch(monkeypatch, memmaps):
    xm, ym, _ = memmaps
    calls = []
    monkeypatch.setattr(fnn.train.progress.EpochBar, "steps",
                        lambda self, done, total=None: calls.append((done, total)))
    monkeypatch.setattr(streaming, "STREAM_BLOCK_BYTES", 2 * 4 * 24)      # 2 steps a block
    fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), (xm, ym), **{**FIT, "epochs": 1, "metrics": []},
            stream=True)
    assert calls == [(2, 6), (4, 6), (5, 6), (6, 6)]    # 5 full blocks of 4, then 1 of 1
    calls.clear()
    fit_batches(lambda: iter([(X[i:i + 4], Y[i:i + 4]) for i in range(0, 20, 4)]))
    assert calls == [(2, None), (4, None), (5, None)]   # the length is unknown


def test_the_bar_shows_the_step_count(monkeypatch):
    import io
    monkeypatch.setattr("sys.stderr", io.StringIO())
    bar = fnn.train.progress.EpochBar(3, enabled=True)
    bar.steps(7, 20)
    assert "epoch 1/3: compiling and running the first epoch... step 7/20" in bar.status.desc
    bar.update({"loss": 1.0})
    bar._steps_shown = 0.0
    bar.steps(12)
    assert bar.bar.desc == "step 12"
    bar.close()


def test_a_loader_that_refills_one_buffer_does_not_change_batches_waiting_to_run(in_memory):
    buffer_x, buffer_y = fnn.train.batch_sources.aligned_empty((4, 5), np.float32), np.empty(4, np.int32)
    epochs = iter(range(3))

    def refilling():                 # yields the in-memory batches through one reused buffer
        for xb, yb in in_memory_batches(next(epochs)):
            n = len(xb)
            buffer_x[:n], buffer_y[:n] = xb, yb
            yield buffer_x[:n], buffer_y[:n]
    result = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), refilling, prefetch=4,
                     **{**FIT, "batch_size": None})
    assert_same_fit(in_memory, result)


def test_streamed_predict_and_evaluate_compute_in_the_policy_dtype(in_memory, memmaps):
    xm, _, _ = memmaps
    params, state = in_memory.params, in_memory.state
    kw = dict(batch_size=4, precision="mixed_bfloat16")
    whole = np.asarray(fnn.predict(MODEL, params, state, X, **kw))
    streamed = fnn.predict(MODEL, params, state, xm, stream=True, **kw)
    np.testing.assert_allclose(streamed, whole, rtol=1e-6, atol=1e-6)   # bf16 params too
