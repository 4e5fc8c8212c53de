"""Building AVL packets and the IMEI handshake, as a device does: for the simulator and tests.

The inverse of ``decoding``: ``encode_packet`` writes the same layout that
``decode_packet`` reads, for any of the three codecs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from fleetpulse.ingest.protocols.teltonika.crc import crc16_ibm
from fleetpulse.ingest.protocols.teltonika.decoding import (
    CODEC_8,
    CODEC_8_EXTENDED,
    CODEC_16,
    AvlRecord,
)
from fleetpulse.ingest.protocols.teltonika.framing import PREAMBLE

# The record count is one byte.
MAX_RECORDS_PER_PACKET: Final = 255
_RECORD_HEAD = struct.Struct(">QBiihHBH")
_WIDTHS: Final = (1, 2, 4, 8)


def encode_imei(imei: str) -> bytes:
    """Return the handshake a device sends first: 2-byte length, then the ASCII IMEI."""
    raw = imei.encode("ascii")
    return len(raw).to_bytes(2, "big") + raw


def encode_packet(codec_id: int, records: Sequence[AvlRecord]) -> bytes:
    """Return one whole AVL packet with preamble, data length and CRC.

    Each IO value goes into the smallest width group (1, 2, 4 or 8 bytes) that holds
    it; bytes values are Codec 8 Extended's variable-length elements. Raises ValueError
    for more than 255 records, an unknown codec, or a value the codec cannot carry.
    """
    if not 0 < len(records) <= MAX_RECORDS_PER_PACKET:
        raise ValueError(f"a packet carries 1-{MAX_RECORDS_PER_PACKET} records, got {len(records)}")
    if codec_id not in (CODEC_8, CODEC_8_EXTENDED, CODEC_16):
        raise ValueError(f"unknown codec id {codec_id:#04x}")
    parts = [bytes((codec_id, len(records)))]
    for record in records:
        parts.append(_encode_record(codec_id, record))
    parts.append(bytes((len(records),)))
    data = b"".join(parts)
    return PREAMBLE + len(data).to_bytes(4, "big") + data + crc16_ibm(data).to_bytes(4, "big")


def _encode_record(codec_id: int, record: AvlRecord) -> bytes:
    head = _RECORD_HEAD.pack(
        record.ts_ms,
        record.priority,
        round(record.lon * 1e7),
        round(record.lat * 1e7),
        record.altitude_m,
        record.angle_deg,
        record.satellites,
        record.speed_kmh,
    )
    groups: dict[int, list[tuple[int, int]]] = {width: [] for width in _WIDTHS}
    variable: list[tuple[int, bytes]] = []
    for element_id, value in record.io.items():
        if isinstance(value, bytes):
            if codec_id != CODEC_8_EXTENDED:
                raise ValueError(f"IO element {element_id}: variable-length values need Codec 8E")
            variable.append((element_id, value))
        else:
            width = next(w for w in _WIDTHS if value < 1 << (8 * w))
            groups[width].append((element_id, value))
    total = sum(len(group) for group in groups.values()) + len(variable)

    if codec_id == CODEC_8:
        io = bytes((record.event_io_id, total))
        count_bytes, id_bytes = 1, 1
    elif codec_id == CODEC_16:
        generation = record.generation_type if record.generation_type is not None else 0
        io = record.event_io_id.to_bytes(2, "big") + bytes((generation, total))
        count_bytes, id_bytes = 1, 2
    else:
        io = record.event_io_id.to_bytes(2, "big") + total.to_bytes(2, "big")
        count_bytes, id_bytes = 2, 2
    parts = [head, io]
    for width in _WIDTHS:
        group = groups[width]
        parts.append(len(group).to_bytes(count_bytes, "big"))
        for element_id, value in group:
            parts.append(element_id.to_bytes(id_bytes, "big") + value.to_bytes(width, "big"))
    if codec_id == CODEC_8_EXTENDED:
        parts.append(len(variable).to_bytes(2, "big"))
        for element_id, raw in variable:
            parts.append(element_id.to_bytes(2, "big") + len(raw).to_bytes(2, "big") + raw)
    return b"".join(parts)
