"""Reading and writing the safetensors file format, by its published layout.

A safetensors file is: 8 bytes (little-endian ``uint64``) giving the length
``N`` of a JSON header, the header (``N`` bytes, space-padded), then the raw
bytes of every tensor, little-endian, C order. The header maps each tensor's
name to ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}``
(offsets into the bytes after the header), and ``"__metadata__"`` to a
``{str: str}`` dict. numpy (``safetensors.numpy``), PyTorch
(``safetensors.torch``), Hugging Face tools and JAX (``safetensors.flax``)
read it without fnn; bfloat16 is the format's ``BF16``.

The layout is small enough to write by hand, which lets fnn write through
its own atomic file (`fnn.checkpoint.atomic`) and check a file fully
before trusting it: a truncated or corrupt file is a
`CorruptCheckpointError` that names it.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any, BinaryIO, Mapping

import jax.numpy as jnp
import numpy as np

# safetensors dtype names <-> numpy dtypes (bfloat16 is ml_dtypes', as JAX uses it).
DTYPES = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(jnp.bfloat16), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32), "U16": np.dtype(np.uint16), "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
MAX_HEADER = 100 * 2 ** 20      # the format's own limit on the header's size


class CorruptCheckpointError(ValueError):
    """A checkpoint file that is truncated, corrupt, or not a safetensors file."""


def header_and_arrays(arrays: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str]) -> tuple[bytes, list[np.ndarray]]:
    """The file's first part (length + JSON header) and the arrays to write after it, in order.

    Raises:
      TypeError: an array of a dtype the format has no name for, or non-string metadata.
    """
    header: dict[str, Any] = {"__metadata__": dict(metadata)}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("safetensors metadata must map str to str")
    offset, ordered = 0, []
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype not in NAMES:
            raise TypeError(f"checkpoint: {name!r} has dtype {array.dtype}, which the "
                            f"safetensors format cannot store (it stores "
                            f"{', '.join(str(d) for d in DTYPES.values())})")
        size = array.nbytes
        header[name] = {"dtype": NAMES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
        ordered.append(array)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + 8) % 8)           # the data starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text, ordered


def write_array(f: BinaryIO, array: np.ndarray) -> None:
    """Append ``array``'s bytes (little-endian, C order) to ``f``."""
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    f.write(memoryview(np.asarray(array, order="C").reshape(-1).view(np.uint8)))


def read_header(path: str | os.PathLike, f: BinaryIO) -> tuple[dict, int, int]:
    """``(header, data_start, data_size)`` of an open file, checked against its size."""
    total = os.fstat(f.fileno()).st_size
    first = f.read(8)
    if len(first) < 8:
        raise CorruptCheckpointError(f"{path}: not a checkpoint (a safetensors file): it has "
                                     f"{total} bytes, fewer than the 8 of the header length")
    (length,) = struct.unpack("<Q", first)
    if length > min(MAX_HEADER, total - 8):
        raise CorruptCheckpointError(
            f"{path}: truncated or not a safetensors file: the header length field says "
            f"{length} bytes but the file has {total - 8} after it")
    try:
        header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (ValueError, UnicodeDecodeError) as error:
        raise CorruptCheckpointError(f"{path}: corrupt checkpoint: its header is not valid "
                                     f"JSON ({error})") from None
    data_size = total - 8 - length
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = entry["data_offsets"]
            dtype, shape = DTYPES[entry["dtype"]], tuple(entry["shape"])
        except (KeyError, TypeError, ValueError):
            raise CorruptCheckpointError(f"{path}: corrupt checkpoint: bad header entry for "
                                         f"{name!r}: {entry!r:.120}") from None
        if stop - begin != dtype.itemsize * int(np.prod(shape)) or begin < 0:
            raise CorruptCheckpointError(f"{path}: corrupt checkpoint: {name!r} has "
                                         f"{stop - begin} bytes for shape {shape} {dtype}")
        end = max(end, stop)
    if end > data_size:
        raise CorruptCheckpointError(f"{path}: truncated checkpoint: its header describes "
                                     f"{end} bytes of tensors but the file holds {data_size}")
    return header, 8 + length, data_size


def read_arrays(path: str | os.PathLike, f: BinaryIO, header: dict, data_start: int,
                names: list[str] | None = None) -> dict[str, np.ndarray]:
    """The named arrays (all by default) of an open file whose header was read."""
    out = {}
    for name, entry in header.items():
        if name == "__metadata__" or (names is not None and name not in names):
            continue
        begin, stop = entry["data_offsets"]
        f.seek(data_start + begin)
        data = f.read(stop - begin)
        if len(data) != stop - begin:
            raise CorruptCheckpointError(f"{path}: truncated checkpoint: {name!r} is cut off")
        dtype = DTYPES[entry["dtype"]].newbyteorder("<")
        out[name] = np.frombuffer(data, dtype).reshape(entry["shape"]).copy()
    return out
