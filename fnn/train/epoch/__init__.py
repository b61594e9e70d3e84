"""The compiled passes over a dataset: a training epoch on data in memory
(`.in_memory`), over streamed blocks (`.streamed`), split over a device mesh
(`.data_parallel`), how steps are dispatched (`.dispatch`), and the
evaluation passes (`.streamed_evaluation`).

``fnn.train.epoch.make_epoch``, ``plan`` and the other names of the former
``fnn.train.epoch`` module are read from this package as before.
"""

from fnn.train.epoch.in_memory import (EpochConfig, accumulate, begin, epoch_function,
                                       epoch_key, epoch_order, finish, gather_batch,
                                       init_accumulator, jitted_finish, make_epoch, plan,
                                       run_steps, skipped_count, step_loop, whole_epoch)
