"""Cutting a device's TCP byte stream into the IMEI handshake and whole AVL packets.

The stream starts with the IMEI: a 2-byte big-endian length and that many ASCII digits.
After the server's answer, each AVL packet is four zero bytes (the preamble), a 4-byte
data length, the data (codec id to the second record count) and a 4-byte CRC field.
TCP may split a packet across reads or join several in one, so ``StreamFramer`` keeps
what it has not consumed yet.
"""

from __future__ import annotations

from typing import Final

from fleetpulse.ingest.protocols.teltonika.errors import FrameError

PREAMBLE: Final = b"\x00\x00\x00\x00"
# Preamble and data length.
HEADER_BYTES: Final = 8
CRC_FIELD_BYTES: Final = 4
# Codec id and the two record counts: the smallest data field.
MIN_DATA_BYTES: Final = 3
# Teltonika devices send a 15-digit IMEI.
IMEI_DIGITS: Final = 15


class StreamFramer:
    """Incremental framer of one connection. Feed it bytes, then pull the IMEI and packets.

    ``max_frame_bytes`` bounds one whole packet (header, data and CRC field), so a
    corrupt length cannot make the connection buffer without limit. The framer holds at
    most one packet plus what one read added.
    """

    def __init__(self, max_frame_bytes: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def preview(self, limit: int) -> bytes:
        """Return up to ``limit`` bytes not consumed yet, for logs and dead letters."""
        return bytes(self._buffer[:limit])

    def next_imei(self) -> str | None:
        """Return the IMEI once its bytes are complete, else None.

        Raises FrameError if the length is not 15 or the IMEI has a character that is
        not a digit.
        """
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length = int.from_bytes(buffer[:2], "big")
        if length != IMEI_DIGITS:
            raise FrameError(
                "invalid_imei",
                f"IMEI length field is {length}, expected {IMEI_DIGITS} "
                f"(first bytes {bytes(buffer[:8]).hex()})",
            )
        if len(buffer) < 2 + length:
            return None
        raw = bytes(buffer[2 : 2 + length])
        if not raw.isdigit():
            raise FrameError("invalid_imei", f"IMEI {raw.hex()} (hex) contains non-digits")
        del buffer[: 2 + length]
        return raw.decode("ascii")

    def next_packet(self) -> bytes | None:
        """Return the next whole AVL packet, preamble to CRC field, or None if incomplete.

        Raises FrameError when the preamble is not four zero bytes or the data length is
        below 3 bytes or makes the packet larger than ``max_frame_bytes``. After that
        error the stream cannot be resynchronised, so the caller closes the connection.
        """
        buffer = self._buffer
        if len(buffer) < HEADER_BYTES:
            if not PREAMBLE.startswith(bytes(buffer[:4])):
                raise _bad_preamble(buffer)
            return None
        if buffer[:4] != PREAMBLE:
            raise _bad_preamble(buffer)
        data_bytes = int.from_bytes(buffer[4:8], "big")
        frame_bytes = HEADER_BYTES + data_bytes + CRC_FIELD_BYTES
        if data_bytes < MIN_DATA_BYTES:
            raise FrameError(
                "invalid_length", f"data length {data_bytes} is below {MIN_DATA_BYTES} bytes"
            )
        if frame_bytes > self.max_frame_bytes:
            raise FrameError(
                "frame_too_large",
                f"packet of {frame_bytes} bytes exceeds max_frame_bytes {self.max_frame_bytes}",
            )
        if len(buffer) < frame_bytes:
            return None
        frame = bytes(buffer[:frame_bytes])
        del buffer[:frame_bytes]
        return frame


def _bad_preamble(buffer: bytearray) -> FrameError:
    return FrameError(
        "bad_preamble",
        f"packet starts with {bytes(buffer[:4]).hex()}, expected the preamble 00000000",
    )
