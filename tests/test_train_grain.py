"""fit over Grain pipelines (the fnn[grain] extra): a DataLoader trains, an IterDataset equals
the same batches given as a list, and a run reading one endless Grain iterator across epochs,
interrupted and resumed from its checkpoint (the iterator's state saved in it), equals the
uninterrupted run bit for bit."""

import jax
import numpy as np
import pytest

import fnn

grain = pytest.importorskip("grain")

MODEL = fnn.Sequential([fnn.Dense(8), fnn.Activation("relu"), fnn.Dense(3)])
LOSS = "sparse_softmax_cross_entropy"
RNG = np.random.default_rng(1)
X = RNG.normal(size=(48, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32) + (X[:, 1] > 0).astype(np.int32)
KEY = jax.random.key(0)


class Rows:
    """A random-access data source: one (x, y) example per index."""

    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return X[i], Y[i]


def loader(seed=0):
    sampler = grain.samplers.IndexSampler(len(X), shuffle=True, num_epochs=1, seed=seed)
    return grain.DataLoader(data_source=Rows(), sampler=sampler, worker_count=0,
                            operations=[grain.transforms.Batch(8)])


def dataset():
    return grain.MapDataset.source(Rows()).shuffle(seed=3).batch(8)


def test_a_grain_dataloader_pipeline_trains():
    result = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.05), loader(), epochs=15, batch_size=None,
                     key=KEY, progress=False, metrics=["accuracy"],
                     validation_data=loader(seed=1))
    assert len(result.history["loss"]) == 15
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    assert result.history["val_accuracy"][-1] > 0.8


def test_a_grain_iter_dataset_equals_the_same_batches_as_a_list():
    batches = [tuple(np.asarray(a) for a in b) for b in dataset()]
    kw = dict(epochs=2, batch_size=None, key=KEY, progress=False)
    a = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), lambda: iter(batches), **kw)
    b = fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), dataset().to_iter_dataset(), **kw)
    assert a.history == b.history
    for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(u, v)


def test_a_resumed_run_restores_the_grain_iterator_state(tmp_path):
    def endless():
        return dataset().repeat().to_iter_dataset()
    kw = dict(epochs=4, batch_size=None, key=KEY, progress=False, steps_per_epoch=4)
    whole = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), endless(), **kw)

    def interrupt(epoch, logs):
        if epoch == 2:
            raise KeyError("interrupted")
    with pytest.raises(KeyError):
        fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), endless(), checkpoint_dir=tmp_path,
                callbacks=[interrupt], **kw)
    place = fnn.checkpoint.info(fnn.checkpoint.Manager(tmp_path).latest()).config["stream"]
    assert place["epoch"] == 2 and place["reader"]            # epochs 0 and 1 done
    resumed = fnn.fit(MODEL, LOSS, fnn.optim.adam(0.01), endless(), checkpoint_dir=tmp_path,
                      resume=True, **kw)
    assert resumed.history == whole.history
    for u, v in zip(jax.tree.leaves((whole.params, whole.opt_state)),
                    jax.tree.leaves((resumed.params, resumed.opt_state))):
        np.testing.assert_array_equal(u, v)
