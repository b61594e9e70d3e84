"""The former name of `fnn.train.epoch.dispatch` (how an epoch's steps are dispatched), kept for users' imports."""

from fnn.train.epoch.dispatch import (DEFAULT_UNROLL, STRATEGIES, loop_friendly_on_cpu,  # noqa: F401
                                prefers_unrolled, resolve)
