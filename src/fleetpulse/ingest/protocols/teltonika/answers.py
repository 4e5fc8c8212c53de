"""What the server sends back to a Teltonika device over TCP."""

from __future__ import annotations

from typing import Final

# One byte after the IMEI handshake.
IMEI_ACCEPTED: Final = b"\x01"
IMEI_REJECTED: Final = b"\x00"


def record_count_answer(records: int) -> bytes:
    """Return the acknowledgement of an AVL packet: its record count, 4 bytes big-endian."""
    return records.to_bytes(4, "big")
