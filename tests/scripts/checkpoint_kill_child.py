"""Saves checkpoint A (small) to argv[1], says "saved", then starts saving checkpoint B (16 MB,
written slowly) to the same path and says "writing" halfway; the test kills it there."""

import sys
import time

import numpy as np

import fnn
from fnn.checkpoint import safetensors_format


def main() -> None:
    path = sys.argv[1]
    fnn.checkpoint.save(path, {"w": np.full(4, 1.0, np.float32)}, epoch=1)
    print("saved", flush=True)
    write = safetensors_format.write_array
    count = [0]

    def slow(f, array):
        write(f, array)
        count[0] += 1
        if count[0] == 2:
            f.flush()
            print("writing", flush=True)
            time.sleep(60)               # killed here, mid-file

    safetensors_format.write_array = slow
    big = {f"w{i}": np.full((1024, 1024), 2.0, np.float32) for i in range(4)}
    fnn.checkpoint.save(path, big, epoch=2)


if __name__ == "__main__":
    main()
