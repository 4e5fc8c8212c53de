"""CRC-16/IBM (also called CRC-16/ARC), the checksum of Teltonika AVL packets."""

from __future__ import annotations

# Reflected form of the polynomial x^16 + x^15 + x^2 + 1.
_POLYNOMIAL = 0xA001


def _build_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _build_table()


def crc16_ibm(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/IBM of ``data``: initial value 0, reflected, no final XOR."""
    crc = 0
    table = _TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
