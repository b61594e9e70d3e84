"""Real data sets: small ones that ship with scikit-learn, and MNIST, Fashion-MNIST and
CIFAR-10 from their standard files (`fnn.dataset_files`).

Each loader returns numpy arrays ``(x, y)`` with fixed dtypes, in the order
scikit-learn stores them (not shuffled: split them with
`fnn.train.data.train_dev_test_split`, and standardise with statistics
fitted on the training split, `fnn.preprocessing.fit_standardizer`).

scikit-learn is an optional extra: ``pip install "fnn[examples]"``. It is
imported only when a loader is called.

    >>> x, y = fnn.datasets.load_digits()
    >>> x.shape, x.dtype, y.shape, y.dtype, float(x.max())
    ((1797, 64), dtype('float32'), (1797,), dtype('int32'), 1.0)
"""

from __future__ import annotations

import importlib

import numpy as np

from fnn.dataset_files import cifar10, data_home, fashion_mnist, mnist, read_idx

__all__ = ["load_digits", "load_breast_cancer", "load_diabetes", "mnist", "fashion_mnist",
           "cifar10", "read_idx", "data_home"]


def _sklearn_datasets(loader: str):
    try:
        return importlib.import_module("sklearn.datasets")
    except ImportError as err:
        raise ImportError(f"fnn.datasets.{loader} needs scikit-learn, an optional extra: "
                          'pip install "fnn[examples]"') from err


def load_digits(images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Handwritten digits: 1797 grey 8x8 images of the digits 0-9 (10 classes).

    Pixel intensities (0..16 in the source) are divided by 16, so ``x`` lies
    in ``[0, 1]``. Classes are nearly balanced (174 to 183 examples each).

    Args:
      images: return ``x`` as NHWC images of shape ``(1797, 8, 8, 1)`` (for
        convolutions and `fnn.train.data.augment`) instead of flat rows of 64.

    Returns:
      ``(x, y)``: ``x`` float32 of shape ``(1797, 64)`` or ``(1797, 8, 8, 1)``;
      ``y`` int32 labels in ``0..9``, shape ``(1797,)``.

    Examples:
      >>> x, y = fnn.datasets.load_digits(images=True)
      >>> x.shape, int(np.bincount(y).min()), int(np.bincount(y).max())
      ((1797, 8, 8, 1), 174, 183)
    """
    data = _sklearn_datasets("load_digits").load_digits()
    x = (np.asarray(data.data, np.float32) / np.float32(16.0)).astype(np.float32)
    if images:
        x = x.reshape(-1, 8, 8, 1)
    return x, np.asarray(data.target, np.int32)


def load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """Wisconsin breast cancer: 569 tumours, 30 real-valued features, binary label.

    Features are raw measurements on very different scales (areas in the
    hundreds, smoothness around 0.1): standardise them before training.

    Returns:
      ``(x, y)``: ``x`` float32 of shape ``(569, 30)``; ``y`` int32 of shape
      ``(569,)`` with ``0`` = malignant (212) and ``1`` = benign (357).

    Examples:
      >>> x, y = fnn.datasets.load_breast_cancer()
      >>> x.shape, np.bincount(y).tolist()
      ((569, 30), [212, 357])
    """
    data = _sklearn_datasets("load_breast_cancer").load_breast_cancer()
    return np.asarray(data.data, np.float32), np.asarray(data.target, np.int32)


def load_diabetes(scaled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Diabetes progression (regression): 442 patients, 10 features, one target.

    The target is a measure of disease progression one year after baseline
    (25 to 346, mean ~152).

    Args:
      scaled: features as scikit-learn ships them by default (each column
        mean-centred and scaled to unit Euclidean norm); ``False`` gives the
        raw values (age in years, sex coded 1/2, BMI, ...).

    Returns:
      ``(x, y)``: ``x`` float32 of shape ``(442, 10)``; ``y`` float32 of shape
      ``(442,)``.

    Examples:
      >>> x, y = fnn.datasets.load_diabetes()
      >>> x.shape, y.dtype, round(float(y.mean()))
      ((442, 10), dtype('float32'), 152)
    """
    data = _sklearn_datasets("load_diabetes").load_diabetes(scaled=scaled)
    return np.asarray(data.data, np.float32), np.asarray(data.target, np.float32)
