"""MNIST, Fashion-MNIST and CIFAR-10 from their standard published files.

Each loader returns ``(x_train, y_train), (x_test, y_test)`` as Keras's loaders
do: uint8 images (``(60000, 28, 28)`` for MNIST, ``(50000, 32, 32, 3)`` NHWC for
CIFAR-10) and uint8 class labels of shape ``(n,)`` (Keras gives CIFAR-10's as
``(n, 1)``; here every label array is flat, as the sparse losses take it).

Where the files are read from:

- ``path``: a folder holding the files under their usual names, gzipped or not
  (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
  ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``; for CIFAR-10 the
  python batches ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, in the
  folder, in ``cifar-10-batches-py/`` inside it, or the archive
  ``cifar-10-python.tar.gz``). Nothing is downloaded.
- ``path=None``: the cache folder ``$FNN_DATA/<name>`` (or ``~/.cache/fnn/<name>``);
  missing files are downloaded there when the machine is online, and when it is
  not, the error says where to put them.

The files are checked as they are read (the IDX magic numbers and sizes, the
number of images and labels), so a truncated or foreign file is an error, not a
wrong array.
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import pickle
import tarfile
import urllib.error
import urllib.request
import zlib
from typing import Any

import numpy as np

__all__ = ["mnist", "fashion_mnist", "cifar10", "read_idx", "data_home"]

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")
_SOURCES = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
}
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def data_home(name: str) -> pathlib.Path:
    """The cache folder of data set ``name``: ``$FNN_DATA/<name>``, else ``~/.cache/fnn/<name>``.

    Examples:
      >>> import os
      >>> os.environ["FNN_DATA"] = "/data/sets"
      >>> str(fnn.datasets.data_home("mnist"))
      '/data/sets/mnist'
      >>> del os.environ["FNN_DATA"]
    """
    root = os.environ.get("FNN_DATA")
    base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "fnn"
    return base / name


def read_idx(data: bytes, where: str = "read_idx") -> np.ndarray:
    """The array an IDX file holds (the format of the MNIST files).

    The header is two zero bytes, a type code (``0x08``: unsigned bytes), the number
    of dimensions ``d``, then ``d`` big-endian 32-bit sizes; the values follow.

    Examples:
      >>> header = bytes([0, 0, 8, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
      >>> fnn.datasets.read_idx(header + bytes(range(6)))
      array([[0, 1, 2],
             [3, 4, 5]], dtype=uint8)
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{where}: not an IDX file of unsigned bytes (header "
                         f"{data[:4].hex() or 'empty'}, expected 000008..)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    if len(data) - start != int(np.prod(shape)):
        raise ValueError(f"{where}: the header says {shape} = {int(np.prod(shape))} values but "
                         f"the file holds {len(data) - start} (truncated?)")
    return np.frombuffer(data, np.uint8, offset=start).reshape(shape).copy()


def _read_file(folder: pathlib.Path, name: str, where: str = "fnn.datasets") -> bytes | None:
    for candidate, opener in ((folder / (name + ".gz"), gzip.open), (folder / name, open)):
        if candidate.is_file():
            try:
                with opener(candidate, "rb") as f:
                    return f.read()
            except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
                raise ValueError(
                    f"{where}: {candidate} is damaged or truncated ({type(err).__name__}: "
                    f"{err}); delete it and download it again") from err
    return None


def _folder(name: str, path: Any) -> pathlib.Path:
    """The dataset's folder: ``path`` (which must be a folder, not a file) or the cache."""
    if path is None:
        return data_home(name)
    folder = pathlib.Path(path)
    if folder.is_file():
        raise ValueError(f"fnn.datasets.{name}: path must be the folder that holds the "
                         f"dataset's files, but {folder} is a file; pass its folder, "
                         f"path={str(folder.parent)!r}")
    return folder


def _download(url: str, target: pathlib.Path) -> None:
    """``url`` to ``target`` through a temporary file (no half-written file is left)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        os.replace(part, target)
    finally:
        if part.exists():
            part.unlink()


def _fetch_missing(name: str, folder: pathlib.Path, files: list[str]) -> None:
    for file in files:
        try:
            _download(_SOURCES[name] + file, folder / file)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise FileNotFoundError(
                f"fnn.datasets.{name}: {file} is not in {folder} and downloading it from "
                f"{_SOURCES[name] + file} failed ({err}). Put the files "
                f"{', '.join(files)} into {folder} (or set $FNN_DATA, or pass path=)"
            ) from None


def _idx_dataset(name: str, path: Any, size: tuple[int, int]) -> tuple:
    folder, where = _folder(name, path), f"fnn.datasets.{name}"
    missing = [f for f in _IDX_FILES if not any(
        (folder / candidate).is_file() for candidate in (f, f + ".gz"))]
    if missing:
        if path is not None:
            raise FileNotFoundError(f"fnn.datasets.{name}: {folder} lacks "
                                    f"{', '.join(m + '[.gz]' for m in missing)}")
        _fetch_missing(name, folder, [m + ".gz" for m in missing])
    arrays = [read_idx(_read_file(folder, f, where), f"{where}: {folder / f}")
              for f in _IDX_FILES]
    for (images, labels), n, part in ((arrays[:2], size[0], "train"),
                                      (arrays[2:], size[1], "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"fnn.datasets.{name}: the {part} files hold images of shape "
                             f"{images.shape} and labels of shape {labels.shape}")
        if path is None and len(images) != n:
            raise ValueError(f"fnn.datasets.{name}: {folder} holds {len(images)} {part} "
                             f"images, expected {n}")
    return (arrays[0], arrays[1]), (arrays[2], arrays[3])


def mnist(path: Any = None) -> tuple:
    """MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey, 10 classes.

    Args:
      path: a folder holding the four IDX files (module docstring); ``None``: the cache
        folder, downloaded into when missing and online.

    Returns:
      ``(x_train, y_train), (x_test, y_test)``: uint8 images ``(n, 28, 28)`` (0..255)
      and uint8 labels ``(n,)`` in ``0..9``.
    """
    return _idx_dataset("mnist", path, (60000, 10000))


def fashion_mnist(path: Any = None) -> tuple:
    """Fashion-MNIST (Zalando): 60,000 + 10,000 grey 28x28 images of 10 kinds of clothing,
    in MNIST's file format and names; as `mnist` otherwise."""
    return _idx_dataset("fashion_mnist", path, (60000, 10000))


def _cifar_members(folder: pathlib.Path) -> dict | None:
    """``{batch name: bytes}`` from the folder, its ``cifar-10-batches-py/``, or the archive."""
    for inner in (folder, folder / "cifar-10-batches-py"):
        if all((inner / b).is_file() for b in _CIFAR_BATCHES):
            return {b: (inner / b).read_bytes() for b in _CIFAR_BATCHES}
    archive = folder / _CIFAR_ARCHIVE
    if archive.is_file():
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = {pathlib.PurePosixPath(m.name).name: m for m in tar.getmembers()}
                if all(b in members for b in _CIFAR_BATCHES):
                    return {b: tar.extractfile(members[b]).read() for b in _CIFAR_BATCHES}
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
            raise ValueError(f"fnn.datasets.cifar10: {archive} is damaged or truncated "
                             f"({type(err).__name__}: {err}); delete it and download it "
                             f"again") from err
    return None


def _cifar_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = pickle.load(io.BytesIO(data), encoding="bytes")
    images = np.asarray(batch[b"data"], np.uint8)
    labels = np.asarray(batch[b"labels"], np.uint8)
    if images.ndim != 2 or images.shape[1] != 3072 or len(images) != len(labels):
        raise ValueError(f"{where}: expected data (n, 3072) and n labels, got "
                         f"{images.shape} and {labels.shape}")
    # rows are 1024 red, 1024 green, 1024 blue values (CHW): to NHWC
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def cifar10(path: Any = None) -> tuple:
    """CIFAR-10: 50,000 training and 10,000 test colour images, 32x32, 10 classes.

    Args:
      path: a folder holding the python batches (module docstring); ``None``: the cache
        folder, downloaded into (the archive, 163 MB) when missing and online.

    Returns:
      ``(x_train, y_train), (x_test, y_test)``: uint8 NHWC images ``(n, 32, 32, 3)`` and
      uint8 labels ``(n,)`` in ``0..9``.
    """
    folder = _folder("cifar10", path)
    members = _cifar_members(folder)
    if members is None:
        if path is not None:
            raise FileNotFoundError(
                f"fnn.datasets.cifar10: {folder} holds neither the python batches "
                f"({', '.join(_CIFAR_BATCHES)}) nor {_CIFAR_ARCHIVE}")
        _fetch_missing("cifar10", folder, [_CIFAR_ARCHIVE])
        members = _cifar_members(folder)
        if members is None:
            raise ValueError(f"fnn.datasets.cifar10: {folder / _CIFAR_ARCHIVE} lacks the "
                             f"python batches")
    parts = [_cifar_batch(members[b], f"fnn.datasets.cifar10: {b}") for b in _CIFAR_BATCHES]
    train = tuple(np.concatenate(a) for a in zip(*parts[:5]))
    return train, parts[5]
