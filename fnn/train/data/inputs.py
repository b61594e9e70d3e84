"""``fit``'s first stage: open the inputs. What kind of data it is (arrays in memory,
streamed arrays, an iterable of batches), the training and validation parts (a held-out
``validation_split``), each checked for structure and lengths; nothing about the model yet.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fnn.train.data import checks, processes, streaming
from fnn.train.data.splits import num_examples, split_off_validation
from fnn.validation import check_int


class Batching(NamedTuple):
    """How an epoch reads the training data: ``fit``'s ``epochs``, ``batch_size``,
    ``shuffle``, ``drop_remainder``, ``steps_per_epoch``, ``stream`` and ``prefetch``."""

    epochs: int
    batch_size: int | None
    shuffle: bool = True
    drop_remainder: bool = False
    steps_per_epoch: int | None = None
    stream: bool | None = None
    prefetch: int = 2


class Validation(NamedTuple):
    """``fit``'s ``validation_data``, ``validation_split`` and ``validation_batch_size``."""

    data: Any = None
    split: float | None = None
    batch_size: int | None = None


class Inputs(NamedTuple):
    """The opened inputs of a fit.

    Attributes:
      kind: ``"memory"``, ``"array"`` (streamed arrays) or ``"iterable"``.
      source: the iterable's source (``None`` for arrays).
      x, y: the training arrays (an iterable's first batch).
      n: the number of training examples over all processes.
      batching: ``fit``'s batching, with what the data decides (an iterable's own batch
        size, no shuffle, no dropped remainder).
      validation: ``(x_dev, y_dev)`` (a streamed source's first batch), or ``None``.
      val_source: the streamed validation source, or ``None``.
      validation_batch_size: the validation pass's batch size.
      sample_weight: the training examples' weights (cut with ``validation_split``).
    """

    kind: str
    source: Any
    x: Any
    y: Any
    n: int
    batching: Batching
    validation: tuple | None
    val_source: Any
    validation_batch_size: int | None
    sample_weight: Any


def open_inputs(where: str, data: Any, batching: Batching, validation: Validation,
                sample_weight: Any, class_weight: Any, mesh: Any) -> Inputs:
    """Open and check ``fit``'s training and validation data.

    Args:
      where: the calling function, named in messages.
      data: ``fit``'s ``data``: ``(x, y)`` arrays or an iterable of batches.
      batching: the epochs and batching asked for.
      validation: the validation data or split asked for.
      sample_weight, class_weight: as ``fit`` takes them (refused with an iterable).
      mesh: the device mesh or ``None`` (several processes each pass their shard).

    Returns:
      The `Inputs`.

    Raises:
      ValueError: what `fnn.train.data.streaming` and `fnn.train.data.checks`
        refuse, a bad ``epochs``/``batch_size``/``prefetch``/``steps_per_epoch``.
    """
    kind = streaming.kind_of(where, data, batching.stream)
    check_int(where, "prefetch", batching.prefetch)
    check_int(where, "steps_per_epoch", batching.steps_per_epoch, allow_none=True)
    source = None
    if kind == "iterable":
        source = streaming.open_iterable(where, data, batching.steps_per_epoch, batching.epochs,
                                         batching.batch_size, mesh, validation.split,
                                         sample_weight, class_weight)
        x, y = checks.check_data(where, source.first(), "the first batch")
        batching = batching._replace(batch_size=num_examples(x), shuffle=False,
                                     drop_remainder=False)
    else:
        if batching.steps_per_epoch is not None:
            raise ValueError(f"{where}: steps_per_epoch is for an iterable of batches; with "
                             f"(x, y) arrays an epoch is one pass over them")
        x, y = checks.check_data(where, data, "data")
        if kind == "array" and batching.batch_size is None:
            raise ValueError(f"{where}: streamed data needs a batch_size (batch_size=None "
                             f"trains on all the examples in one step, so they would all be "
                             f"on the device at once); pass stream=False to load them")
    validation_data = validation.data
    if validation.split is not None:
        full = num_examples(x)
        (x, y), validation_data = split_off_validation(x, y, validation.split,
                                                       validation_data, mesh)
        if sample_weight is not None:      # given for all the data, as Keras takes it
            if np.shape(sample_weight) != (full,):
                raise ValueError(f"{where}: sample_weight must have shape ({full},), one "
                                 f"weight per example, got {np.shape(sample_weight)}")
            sample_weight = np.asarray(sample_weight)[:num_examples(x)]
    n = num_examples(x)
    if mesh is not None and kind == "memory":   # several processes: x is this one's shard
        n = processes.global_examples(where, n)
    check_int(where, "epochs", batching.epochs)
    check_int(where, "batch_size", batching.batch_size, allow_none=True, maximum=n,
              maximum_name="the number of examples")
    val_source, val_batch = None, validation.batch_size
    if validation_data is not None:
        check_int(where, "validation_batch_size", val_batch, allow_none=True)
        val_source = streaming.open_source(where, validation_data, batching.stream,
                                           batching.epochs, name="validation_data")
        if val_source is not None:
            val_batch = val_batch or batching.batch_size
            streaming.check_batch_size(where, val_source, val_batch, "validation_batch_size")
            validation_data = streaming.first_batch(val_source, val_batch)
        validation_data = checks.check_data(where, validation_data, "validation_data")
        checks.check_validation_data(where, x, y, *validation_data)
    return Inputs(kind, source, x, y, n, batching, validation_data, val_source, val_batch,
                  sample_weight)
