"""TensorBoard event files of a run's per-epoch numbers, written without TensorFlow.

An event file is a TFRecord file (per record: the length as ``uint64``, its
masked CRC-32C, the bytes, their masked CRC-32C) of ``Event`` protocol
buffers; a scalar is ``Event{wall_time, step, summary{value{tag,
simple_value}}}``. The encoding is small enough to write here, so fnn needs
no TensorFlow, tensorboardX or protobuf; ``tensorboard --logdir DIR`` (the
``tensorboard`` extra: ``pip install "fnn[tensorboard]"``) shows the curves.

Training numbers go to ``DIR/train``, validation numbers (``val_*``, under the
same tag without ``val_``) to ``DIR/validation``, so TensorBoard draws the two
curves of each quantity in one chart.
"""

from __future__ import annotations

import os
import socket
import struct
import time

_CRC_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ (0x82F63B78 if _crc & 1 else 0)
    _CRC_TABLE.append(_crc)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord files use it.

    Examples:
      >>> hex(fnn.run.tensorboard.crc32c(b"123456789"))
      '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """An ``Event`` holding one scalar, protobuf-encoded."""
    summary_value = _field(1, tag.encode()) + b"\x15" + struct.pack("<f", value)
    return (b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step)
            + _field(5, _field(1, summary_value)))


def record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked(crc32c(length))) + data
            + struct.pack("<I", _masked(crc32c(data))))


class EventWriter:
    """Appends scalar events to a new event file in ``directory`` (created if missing)."""

    def __init__(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        now = time.time()
        name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}.fnn"
        self.path = os.path.join(directory, name)
        version = b"\x09" + struct.pack("<d", now) + _field(3, b"brain.Event:2")
        with open(self.path, "wb") as f:
            f.write(record(version))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Write ``{tag: value}`` at ``step`` (flushed at once, so a live TensorBoard sees it)."""
        now = time.time()
        with open(self.path, "ab") as f:
            for tag, value in values.items():
                f.write(record(scalar_event(tag, float(value), step, now)))


class TensorBoardLog:
    """A ``fit`` callback writing each epoch's numbers as TensorBoard scalars.

    Args:
      logdir: the run's TensorBoard directory (``train/`` and ``validation/`` inside).

    Examples:
      >>> import tempfile
      >>> log = fnn.run.tensorboard.TensorBoardLog(tempfile.mkdtemp())
      >>> log(0, {"loss": 0.5, "val_loss": 0.6, "learning_rate": 0.01})
      False
      >>> [(tag, step, round(v, 2)) for tag, step, v in read_scalars(log.train.path)]
      [('loss', 0, 0.5), ('learning_rate', 0, 0.01)]
    """

    def __init__(self, logdir: str):
        self.train = EventWriter(os.path.join(logdir, "train"))
        self.validation = EventWriter(os.path.join(logdir, "validation"))

    def __call__(self, epoch: int, logs: dict) -> bool:
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        validation = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        self.train.scalars(epoch, train)
        if validation:
            self.validation.scalars(epoch, validation)
        return False


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    """``[(field number, wire type, value)]`` of a protobuf message (the types used here)."""
    out, at = [], 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        elif wire == 2:
            length, at = _read_varint(data, at)
            value, at = data[at:at + length], at + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def read_scalars(path: str) -> list[tuple[str, int, float]]:
    """``[(tag, step, value)]`` of an event file, every record's CRCs checked.

    Raises:
      ValueError: a record whose CRC does not match (a damaged file).
    """
    with open(path, "rb") as f:
        data = f.read()
    out, at = [], 0
    while at < len(data):
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[at + 8:at + 12])
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if crc != _masked(crc32c(header)) or body_crc != _masked(crc32c(body)):
            raise ValueError(f"{path}: a record at byte {at} fails its CRC check")
        at += 16 + length
        step = 0
        for number, _, value in _fields(body):
            if number == 2:
                step = value
            elif number == 5:
                for _, _, summary_value in _fields(value):
                    parts = {n: v for n, _, v in _fields(summary_value)}
                    out.append((parts[1].decode(), step, struct.unpack("<f", parts[2])[0]))
    return out
