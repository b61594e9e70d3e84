"""Bad input found by trying fnn as a new user would: each gives a clear error (issue 25)."""

import gzip

import jax
import numpy as np
import pytest

import fnn

X = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)
MODEL = fnn.Sequential([fnn.Dense(3)])
LOSS = "sparse_softmax_cross_entropy"
COMMON = dict(epochs=1, batch_size=8, key=jax.random.key(0), progress=False)


def _fit(data=(X, Y), **kw):
    return fnn.fit(MODEL, LOSS, fnn.optim.sgd(0.1), data, **{**COMMON, **kw})


def test_class_weight_for_a_class_the_model_lacks_is_refused():
    with pytest.raises(ValueError, match=r"class_weight names class 5, but the model predicts "
                                         r"3 classes \(0 to 2\)"):
        _fit(class_weight={0: 1, 1: 2, 5: 3})
    with pytest.raises(ValueError, match="it has 2 weights, but the model predicts 3 classes"):
        _fit(class_weight=[1.0, 2.0])


def test_class_weight_within_the_classes_still_trains():
    assert len(_fit(class_weight={0: 1.0, 2: 3.0}).history["loss"]) == 1


def test_checkpoint_dir_that_is_a_file(tmp_path):
    path = tmp_path / "ckpt"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match="checkpoint_dir must be a folder .* is a file"):
        _fit(checkpoint_dir=path)
    with pytest.raises(ValueError, match="is a file"):
        fnn.checkpoint.Manager(path)


def test_a_raising_callback_is_named_with_its_hook_epoch_and_logs():
    with pytest.raises(KeyError) as info:
        _fit(callbacks=[lambda epoch, logs: logs["val_loss"]])
    note = "\n".join(info.value.__notes__)
    assert "callback" in note and "at epoch 0" in note and "'loss'" in note

    class NeedsValidation(fnn.train.Callback):
        def on_epoch_end(self, epoch, logs, control):
            return logs["val_loss"]

    with pytest.raises(KeyError) as info:
        _fit(callbacks=[NeedsValidation()])
    note = "\n".join(info.value.__notes__)
    assert "NeedsValidation in on_epoch_end at epoch 0" in note
    assert "logs has the keys ['learning_rate', 'loss']" in note


def test_a_list_of_examples_is_not_read_as_batches():
    examples = [(X[i], Y[i]) for i in range(len(X))]
    with pytest.raises(ValueError, match=r"data is a list, which is read as \(x, y\) batches, "
                                         r"but its first item looks like one example.*np.stack"):
        _fit(examples, stream=True, batch_size=None)


def test_a_classification_metric_on_a_regression_says_so():
    y = X[:, :1] * 2.0
    with pytest.raises(ValueError, match="metric 'f1' is a classification metric.*say "
                                         "regression") as info:
        fnn.fit(fnn.Sequential([fnn.Dense(1)]), "mse", fnn.optim.sgd(0.1), (X, y),
                metrics=["f1"], **COMMON)
    # the regression reading comes first; from_logits only as the last, custom-loss case
    assert str(info.value).index("regression") < str(info.value).index("from_logits")


def _idx(payload: bytes, magic: bytes) -> bytes:
    return magic + payload


def test_a_damaged_dataset_file_is_named(tmp_path):
    labels = _idx(b"\x00\x00\x00\x02\x01\x02", b"\x00\x00\x08\x01")
    images = _idx(b"\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x01\x05\x06",
                  b"\x00\x00\x08\x03")
    for split in ("train", "t10k"):
        (tmp_path / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
        (tmp_path / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    (train_x, _), _ = fnn.datasets.mnist(path=tmp_path)
    assert train_x.shape == (2, 1, 1)
    whole = (tmp_path / "train-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz is damaged or truncated"
                                         ".*download it again"):
        fnn.datasets.mnist(path=tmp_path)
    with pytest.raises(ValueError, match="path must be the folder"):
        fnn.datasets.mnist(path=tmp_path / "t10k-labels-idx1-ubyte.gz")
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b not an archive")
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz is damaged or truncated"):
        fnn.datasets.cifar10(path=tmp_path)
