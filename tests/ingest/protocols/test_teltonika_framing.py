"""The Teltonika stream framer: handshake, split and joined packets, refusals."""

from __future__ import annotations

import pytest

from fleetpulse.ingest.protocols.teltonika.errors import FrameError
from fleetpulse.ingest.protocols.teltonika.framing import StreamFramer
from tests.ingest.protocols.teltonika_frames import IMEI, IMEI_HANDSHAKE, TC_1, TC_2, TC_4


def test_imei_from_handshake() -> None:
    framer = StreamFramer(65_536)
    framer.feed(IMEI_HANDSHAKE)
    assert framer.next_imei() == IMEI
    assert framer.buffered_bytes == 0


def test_imei_split_byte_by_byte() -> None:
    framer = StreamFramer(65_536)
    found = []
    for byte in IMEI_HANDSHAKE:
        framer.feed(bytes((byte,)))
        imei = framer.next_imei()
        if imei is not None:
            found.append(imei)
    assert found == [IMEI]


def test_imei_wrong_length_refused() -> None:
    framer = StreamFramer(65_536)
    framer.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(FrameError) as caught:
        framer.next_imei()
    assert caught.value.problem == "invalid_imei"


def test_imei_non_digits_refused() -> None:
    framer = StreamFramer(65_536)
    framer.feed(b"\x00\x0f" + b"35630704244101x")
    with pytest.raises(FrameError) as caught:
        framer.next_imei()
    assert caught.value.problem == "invalid_imei"


def test_joined_packets_in_one_read() -> None:
    framer = StreamFramer(65_536)
    framer.feed(TC_1 + TC_2 + TC_4)
    assert [framer.next_packet() for _ in range(4)] == [TC_1, TC_2, TC_4, None]


@pytest.mark.parametrize("cut", [1, 4, 7, 8, 20, len(TC_2) - 1])
def test_split_packet(cut: int) -> None:
    framer = StreamFramer(65_536)
    framer.feed(TC_2[:cut])
    assert framer.next_packet() is None
    framer.feed(TC_2[cut:] + TC_1[:3])
    assert framer.next_packet() == TC_2
    assert framer.next_packet() is None
    assert framer.buffered_bytes == 3


def test_bad_preamble_refused() -> None:
    framer = StreamFramer(65_536)
    framer.feed(b"\x00\x01" + TC_1[2:])
    with pytest.raises(FrameError) as caught:
        framer.next_packet()
    assert caught.value.problem == "bad_preamble"


def test_bad_preamble_seen_early() -> None:
    framer = StreamFramer(65_536)
    framer.feed(b"\x00\x00\x07")
    with pytest.raises(FrameError):
        framer.next_packet()


def test_oversized_length_refused() -> None:
    framer = StreamFramer(1_024)
    framer.feed(b"\x00\x00\x00\x00\x00\x10\x00\x00")
    with pytest.raises(FrameError) as caught:
        framer.next_packet()
    assert caught.value.problem == "frame_too_large"


def test_short_length_refused() -> None:
    framer = StreamFramer(1_024)
    framer.feed(b"\x00\x00\x00\x00\x00\x00\x00\x02")
    with pytest.raises(FrameError) as caught:
        framer.next_packet()
    assert caught.value.problem == "invalid_length"
