"""The notes' edge detection: a 6x6 image through 3x3 vertical and horizontal edge filters.

The image has three dark (0) and three bright (1) columns. A "valid" 3x3
convolution gives a 4x4 map (floor((6 - 3) / 1) + 1 = 4): the vertical-edge
filter answers -4 where its window straddles the edge and 0 elsewhere, the
horizontal one answers 0 everywhere; on the transposed image (dark rows on top)
the two swap. Run:

    python examples/edge_detection.py
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

import fnn

HORIZONTAL = np.array([[1., 2., 1.], [0., 0., 0.], [-1., -2., -1.]], np.float32)
VERTICAL = HORIZONTAL.T.copy()


def edge_maps(image: np.ndarray) -> dict[str, np.ndarray]:
    """The 4x4 output of each filter on a 6x6 image (one channel, no bias)."""
    conv = fnn.Conv2D(1, (3, 3), use_bias=False)
    x = jnp.asarray(image, jnp.float32).reshape(1, 6, 6, 1)
    return {name: np.asarray(conv.apply({"w": jnp.asarray(k).reshape(3, 3, 1, 1)}, {}, x)[0]
                             [0, :, :, 0])
            for name, k in (("vertical", VERTICAL), ("horizontal", HORIZONTAL))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    columns = np.array([[0, 0, 0, 1, 1, 1]] * 6, np.float32)
    results = {}
    for title, image in (("dark | bright columns", columns), ("dark rows above bright rows",
                                                             columns.T)):
        print(f"image ({title}):\n{image.astype(int)}")
        maps = edge_maps(image)
        for name, values in maps.items():
            print(f"{name}-edge filter -> 4x4 output:\n{values.astype(int)}")
        print()
        results[title] = maps
    return results


if __name__ == "__main__":
    main()
