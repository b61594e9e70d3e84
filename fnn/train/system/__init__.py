"""Process-wide opt-ins: the persistent compilation cache, the CPU allocator, deterministic
GPU kernels. Nothing else in `fnn.train` imports these; a user calls them once."""

from fnn.train.system.allocator import tune_cpu_allocator
from fnn.train.system.compile_cache import (compilation_cache_path, disable_compilation_cache,
                                            enable_compilation_cache)
from fnn.train.system.determinism import use_deterministic_ops
