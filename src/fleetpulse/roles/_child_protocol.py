"""The frames between ``fleetpulse run`` and its processor child, and their framing.

Each frame is a 4-byte big-endian length followed by that many bytes of msgpack: one
tagged struct of ``ParentFrame`` (parent to child) or ``ChildFrame`` (child to parent).
The parent sends Configure first, and the child replies with Started or Failed. After that
the parent sends Published, MetricsRequest and Stop, and the child sends Stored,
Acking, Acked, Metrics and Health.
"""

from __future__ import annotations

import asyncio
import struct

import msgspec

from fleetpulse.live.bus import LiveUpdate
from fleetpulse.metrics import FamilySnapshot

# A frame larger than this is a bug or a damaged stream, not a message: the biggest
# frame is one stored batch's views and events, a few MB at fetch_max_records 20,000.
MAX_FRAME_BYTES = 256 * 1024 * 1024

_LENGTH = struct.Struct(">I")


class Configure(msgspec.Struct, tag="configure"):
    """The settings of the server, as JSON of ``Settings``. Always the first frame."""

    settings_json: bytes


class Published(msgspec.Struct, tag="published"):
    """The parent committed a publish to ``queue.db`` since the last Published frame."""


class MetricsRequest(msgspec.Struct, tag="metrics_request"):
    """A request for a metrics snapshot, which the child sends as Metrics with this id."""

    request_id: int


class Stop(msgspec.Struct, tag="stop"):
    """Stop the processor, close the files and exit."""


class Started(msgspec.Struct, tag="started"):
    """The processor runs."""

    pid: int


class Failed(msgspec.Struct, tag="failed"):
    """The child could not start; ``message`` is the error for the operator."""

    message: str


class Stored(msgspec.Struct, tag="stored"):
    """Vehicle views and events of one stored batch, for the live hub and the notifier."""

    update: LiveUpdate


class Acking(msgspec.Struct, tag="acking"):
    """The rows that the child's next ack deletes, sent before the ack's commit.

    If the child dies before its Acked frame, the parent looks whether these rows are
    gone, and so learns whether the ack committed.
    """

    offsets: list[int]
    records: int


class Acked(msgspec.Struct, tag="acked"):
    """Records deleted from ``queue.db`` by the ack announced in the last Acking frame."""

    records: int


class Metrics(msgspec.Struct, tag="metrics"):
    """The child's metrics. ``request_id`` is 0 for a snapshot the child pushes itself."""

    request_id: int
    families: list[FamilySnapshot]


class Health(msgspec.Struct, tag="health"):
    """The error that stopped the child's processor, or None while it runs; sent on each change."""

    failure: str | None


ParentFrame = Configure | Published | MetricsRequest | Stop
ChildFrame = Started | Failed | Stored | Acking | Acked | Metrics | Health

_encoder = msgspec.msgpack.Encoder()
_parent_decoder = msgspec.msgpack.Decoder(ParentFrame)
_child_decoder = msgspec.msgpack.Decoder(ChildFrame)


class ChannelClosed(Exception):
    """The other end closed the channel or sent a damaged frame."""


def encode_frame(frame: ParentFrame | ChildFrame) -> bytes:
    """Return the length-prefixed msgpack bytes of one frame."""
    body = _encoder.encode(frame)
    return _LENGTH.pack(len(body)) + body


async def read_body(reader: asyncio.StreamReader) -> bytes:
    """Read one frame's msgpack body. Raises ChannelClosed at the end of the stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (length,) = _LENGTH.unpack(header)
        if length > MAX_FRAME_BYTES:
            raise ChannelClosed(f"frame of {length} bytes is over {MAX_FRAME_BYTES}")
        return await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ChannelClosed(f"channel closed: {exc!r}") from exc


async def read_parent_frame(reader: asyncio.StreamReader) -> ParentFrame:
    """Read the next frame the parent sent. Raises ChannelClosed at the end or on damage."""
    body = await read_body(reader)
    try:
        return _parent_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ChannelClosed(f"frame from the parent cannot be decoded: {exc}") from exc


async def read_child_frame(reader: asyncio.StreamReader) -> ChildFrame:
    """Read the next frame the child sent. Raises ChannelClosed at the end or on damage."""
    body = await read_body(reader)
    try:
        return _child_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ChannelClosed(f"frame from the child cannot be decoded: {exc}") from exc
