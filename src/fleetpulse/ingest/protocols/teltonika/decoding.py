"""Decoding a whole AVL packet (Codec 8, 8 Extended, 16) into AVL records.

Layout of the data field, all integers big-endian: codec id (1 byte), record count
(1 byte), the records, the record count again (1 byte). The CRC field after it holds
the CRC-16/IBM of the data field in its low two bytes. Each record is a timestamp
(8 bytes, epoch ms), a priority (1), the GPS element (longitude and latitude as
signed 4-byte values in 1e-7 degrees, altitude in m as a signed 2-byte value, angle in
degrees (2), satellites (1), speed in km/h (2)) and the IO element. Codecs differ only
in the IO element: how wide its ids and counts are, and whether it has a generation
type (Codec 16) or variable-length values (Codec 8 Extended).
Source: Teltonika's public "Codec" documentation on wiki.teltonika-gps.com.
"""

from __future__ import annotations

import struct
from typing import Final

import msgspec

from fleetpulse.ingest.protocols.teltonika.crc import crc16_ibm
from fleetpulse.ingest.protocols.teltonika.errors import FrameError
from fleetpulse.ingest.protocols.teltonika.framing import CRC_FIELD_BYTES, HEADER_BYTES

CODEC_8: Final = 0x08
CODEC_8_EXTENDED: Final = 0x8E
CODEC_16: Final = 0x10
CODEC_NAMES: Final = {
    CODEC_8: "Codec 8",
    CODEC_8_EXTENDED: "Codec 8 Extended",
    CODEC_16: "Codec 16",
}

_RECORD_HEAD = struct.Struct(">QBiihHBH")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
# The fixed-width value groups of an IO element: 1, 2, 4 and 8 bytes per value.
_VALUE_WIDTHS: Final = (1, 2, 4, 8)


class AvlRecord(msgspec.Struct, gc=False):
    """One AVL record as the device sent it, before any mapping to record fields.

    ``io`` maps IO element ids to unsigned integers, or to bytes for the variable-length
    elements of Codec 8 Extended. ``generation_type`` is set by Codec 16 only.
    """

    ts_ms: int
    priority: int
    lon: float
    lat: float
    altitude_m: int
    angle_deg: int
    satellites: int
    speed_kmh: int
    event_io_id: int
    io: dict[int, int | bytes]
    generation_type: int | None = None


class AvlPacket(msgspec.Struct, gc=False):
    """The records of one AVL packet and the codec they came in."""

    codec_id: int
    records: list[AvlRecord]


def decode_packet(frame: bytes) -> AvlPacket:
    """Decode one whole packet, preamble to CRC field, as ``StreamFramer`` returns it.

    Raises FrameError when the CRC does not match, the codec id is not 0x08, 0x8E or
    0x10, the two record counts differ, a record runs past the data field, or bytes are
    left over after the last record.
    """
    declared_bytes = int.from_bytes(frame[4:HEADER_BYTES], "big")
    if len(frame) != HEADER_BYTES + declared_bytes + CRC_FIELD_BYTES or declared_bytes < 3:
        raise FrameError(
            "invalid_length",
            f"packet of {len(frame)} bytes does not match its data length {declared_bytes}",
        )
    data = memoryview(frame)[HEADER_BYTES:-CRC_FIELD_BYTES]
    expected_crc = int.from_bytes(frame[-CRC_FIELD_BYTES:], "big")
    actual_crc = crc16_ibm(data)
    if expected_crc != actual_crc:
        raise FrameError(
            "crc_mismatch", f"CRC field is {expected_crc:#06x}, the data's CRC is {actual_crc:#06x}"
        )

    codec_id = data[0]
    if codec_id not in CODEC_NAMES:
        raise FrameError(
            "unknown_codec",
            f"codec id {codec_id:#04x} is not supported; expected 0x08, 0x8e or 0x10",
        )
    first_count = data[1]
    last_count = data[-1]
    if first_count != last_count:
        raise FrameError(
            "record_count_mismatch",
            f"record counts differ: {first_count} before the records, {last_count} after",
        )

    records: list[AvlRecord] = []
    offset = 2
    end = len(data) - 1
    try:
        for _ in range(first_count):
            record, offset = _decode_record(data, offset, codec_id)
            records.append(record)
    except (struct.error, IndexError) as exc:
        raise FrameError(
            "truncated_record",
            f"record {len(records) + 1} of {first_count} runs past the end of the data field",
        ) from exc
    if offset != end:
        raise FrameError(
            "length_mismatch",
            f"the {first_count} records end at byte {offset} of the data field, "
            f"expected byte {end}",
        )
    return AvlPacket(codec_id, records)


def _decode_record(data: memoryview, offset: int, codec_id: int) -> tuple[AvlRecord, int]:
    ts_ms, priority, lon, lat, altitude_m, angle, satellites, speed = _RECORD_HEAD.unpack_from(
        data, offset
    )
    offset += _RECORD_HEAD.size
    generation_type: int | None = None
    if codec_id == CODEC_8:
        event_io_id = data[offset]
        offset += 2  # the event id and the total IO count, which the groups repeat
        io, offset = _decode_io(data, offset, _U8, _U8)
    elif codec_id == CODEC_16:
        event_io_id = _U16.unpack_from(data, offset)[0]
        generation_type = data[offset + 2]
        offset += 4  # event id (2), generation type (1), total IO count (1)
        io, offset = _decode_io(data, offset, _U8, _U16)
    else:
        event_io_id = _U16.unpack_from(data, offset)[0]
        offset += 4  # event id (2), total IO count (2)
        io, offset = _decode_io(data, offset, _U16, _U16)
        offset = _decode_variable_io(data, offset, io)
    record = AvlRecord(
        ts_ms=ts_ms,
        priority=priority,
        lon=lon / 1e7,
        lat=lat / 1e7,
        altitude_m=altitude_m,
        angle_deg=angle,
        satellites=satellites,
        speed_kmh=speed,
        event_io_id=event_io_id,
        io=io,
        generation_type=generation_type,
    )
    return record, offset


def _decode_io(
    data: memoryview, offset: int, count_format: struct.Struct, id_format: struct.Struct
) -> tuple[dict[int, int | bytes], int]:
    io: dict[int, int | bytes] = {}
    count_size = count_format.size
    id_size = id_format.size
    for width in _VALUE_WIDTHS:
        count = count_format.unpack_from(data, offset)[0]
        offset += count_size
        for _ in range(count):
            element_id = id_format.unpack_from(data, offset)[0]
            offset += id_size
            value_end = offset + width
            if value_end > len(data):
                raise IndexError(value_end)
            io[element_id] = int.from_bytes(data[offset:value_end], "big")
            offset = value_end
    return io, offset


def _decode_variable_io(data: memoryview, offset: int, io: dict[int, int | bytes]) -> int:
    count = _U16.unpack_from(data, offset)[0]
    offset += 2
    for _ in range(count):
        element_id, length = struct.unpack_from(">HH", data, offset)
        offset += 4
        value_end = offset + length
        if value_end > len(data):
            raise IndexError(value_end)
        io[element_id] = bytes(data[offset:value_end])
        offset = value_end
    return offset
