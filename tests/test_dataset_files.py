"""fnn.datasets.mnist / fashion_mnist / cifar10 read small files written here in the published
formats (IDX, gzipped or not; CIFAR-10's pickled python batches, loose or in the tar.gz);
nothing here touches the network."""

import gzip
import io
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest

import fnn
from fnn import dataset_files

RNG = np.random.default_rng(0)


def idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                      for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder, n_train=6, n_test=4, gzipped=True):
    arrays = {"train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": RNG.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": RNG.integers(0, 10, n_test)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gzipped:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gzipped", [True, False], ids=["gz", "raw"])
def test_mnist_reads_the_idx_files_in_a_folder(tmp_path, gzipped):
    arrays = write_idx_set(tmp_path, gzipped=gzipped)
    (x_train, y_train), (x_test, y_test) = fnn.datasets.mnist(tmp_path)
    assert x_train.shape == (6, 28, 28) and x_train.dtype == np.uint8
    assert y_test.shape == (4,) and y_test.dtype == np.uint8
    np.testing.assert_array_equal(x_train, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(x_test, arrays["t10k-images-idx3-ubyte"])
    (f_train, _), _ = fnn.datasets.fashion_mnist(tmp_path)       # the same format and names
    np.testing.assert_array_equal(f_train, x_train)


def test_the_default_folder_is_the_cache_under_fnn_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA", str(tmp_path))
    arrays = write_idx_set(tmp_path / "mnist", n_train=60000 // 1000, n_test=10)
    with pytest.raises(ValueError, match="holds 60 train images, expected 60000"):
        fnn.datasets.mnist()                          # the cache must hold the real set
    np.testing.assert_array_equal(fnn.datasets.mnist(tmp_path / "mnist")[0][1],
                                  arrays["train-labels-idx1-ubyte"])


def test_offline_the_error_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FNN_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(dataset_files.urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match=r"Put the files train-images-idx3-ubyte.gz, "
                                                 r".* into .*fashion_mnist"):
        fnn.datasets.fashion_mnist()
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz into .*cifar10"):
        fnn.datasets.cifar10()
    assert not list(tmp_path.rglob("*.part"))          # no half-written download left
    with pytest.raises(FileNotFoundError, match=r"lacks train-images-idx3-ubyte\[.gz\]"):
        fnn.datasets.mnist(tmp_path)                  # an explicit folder: never downloads


def test_a_truncated_or_foreign_idx_file_is_an_error(tmp_path):
    write_idx_set(tmp_path, gzipped=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: the header says \(4, 28, 28\)"
                                         r" = 3136 values but the file holds 3131"):
        fnn.datasets.mnist(tmp_path)
    with pytest.raises(ValueError, match="not an IDX file"):
        fnn.datasets.read_idx(b"PK\x03\x04 a zip file")


def cifar_batch(n):
    images = RNG.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)     # the files' CHW rows
    labels = RNG.integers(0, 10, n)
    return images, labels, pickle.dumps({b"data": rows, b"labels": labels.tolist(),
                                         b"batch_label": b"x"})


@pytest.mark.parametrize("layout", ["loose", "archive"])
def test_cifar10_reads_the_python_batches_loose_or_in_the_archive(tmp_path, layout):
    batches = {name: cifar_batch(3) for name in dataset_files._CIFAR_BATCHES}
    if layout == "loose":
        inner = tmp_path / "cifar-10-batches-py"
        inner.mkdir()
        for name, (_, _, data) in batches.items():
            (inner / name).write_bytes(data)
    else:
        with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, (_, _, data) in batches.items():
                info = tarfile.TarInfo("cifar-10-batches-py/" + name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (x_train, y_train), (x_test, y_test) = fnn.datasets.cifar10(tmp_path)
    assert x_train.shape == (15, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (15,) and y_test.shape == (3,)
    np.testing.assert_array_equal(x_train[3:6], batches["data_batch_2"][0])   # NHWC, in order
    np.testing.assert_array_equal(y_test, batches["test_batch"][1])
    np.testing.assert_array_equal(x_test, batches["test_batch"][0])
