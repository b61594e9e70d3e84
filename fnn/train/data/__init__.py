"""Getting data in: splits (train/dev/test, k-fold, held-out validation), the per-epoch
shuffle, augmentation, sample weights, and streamed sources (memory-mapped arrays and
iterables read in a background thread).

``fnn.train.data.train_dev_test_split`` and the other split functions are read from
this package as before (they live in `fnn.train.data.splits`).
"""

from fnn.train.data.splits import (kfold_indices, num_examples, split_indices,
                                   split_off_validation, train_dev_test_split)
