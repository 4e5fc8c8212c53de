"""Hypothesis fuzzing of the Teltonika framer and decoder: no crash, no hang, clear reasons.

Every input either decodes or raises FrameError with a known problem code and a message.
Inputs are bounded in size, so a hang would show as a time-out of the test run.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fleetpulse.ingest.protocols.teltonika.decoding import decode_packet
from fleetpulse.ingest.protocols.teltonika.errors import FrameError
from fleetpulse.ingest.protocols.teltonika.framing import StreamFramer
from fleetpulse.ingest.protocols.teltonika.mapping import FMB, to_record_in
from tests.ingest.protocols.teltonika_frames import IMEI, VECTORS

PROBLEMS = {
    "bad_preamble",
    "invalid_length",
    "frame_too_large",
    "crc_mismatch",
    "unknown_codec",
    "record_count_mismatch",
    "truncated_record",
    "length_mismatch",
    "invalid_imei",
}
MAX_FRAME_BYTES = 4_096


def _drain(framer: StreamFramer) -> None:
    """Decode every packet the framer yields, as the session does."""
    while (frame := framer.next_packet()) is not None:
        for avl in decode_packet(frame).records:
            to_record_in(IMEI, avl, FMB)


def _check_failure(exc: FrameError) -> None:
    assert exc.problem in PROBLEMS
    assert exc.message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    framer = StreamFramer(MAX_FRAME_BYTES)
    framer.feed(data)
    try:
        _drain(framer)
    except FrameError as exc:
        _check_failure(exc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_random_handshake(data: bytes) -> None:
    framer = StreamFramer(MAX_FRAME_BYTES)
    framer.feed(data)
    try:
        imei = framer.next_imei()
    except FrameError as exc:
        _check_failure(exc)
    else:
        assert imei is None or (len(imei) == 15 and imei.isdigit())


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(sorted(VECTORS)),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_vectors(name: str, changes: list[tuple[int, int]]) -> None:
    frame = bytearray(VECTORS[name])
    for position, value in changes:
        frame[position % len(frame)] = value
    framer = StreamFramer(MAX_FRAME_BYTES)
    framer.feed(bytes(frame))
    try:
        _drain(framer)
    except FrameError as exc:
        _check_failure(exc)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(VECTORS)), st.data())
def test_mutated_vectors_with_valid_crc(name: str, data: st.DataObject) -> None:
    """Mutations behind a recomputed CRC reach the record parser instead of the CRC check."""
    from fleetpulse.ingest.protocols.teltonika.crc import crc16_ibm

    frame = bytearray(VECTORS[name])
    position = data.draw(st.integers(8, len(frame) - 5))
    frame[position] = data.draw(st.integers(0, 255))
    frame[-4:] = crc16_ibm(frame[8:-4]).to_bytes(4, "big")
    framer = StreamFramer(MAX_FRAME_BYTES)
    framer.feed(bytes(frame))
    try:
        _drain(framer)
    except FrameError as exc:
        _check_failure(exc)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(VECTORS)), st.lists(st.integers(1, 40), max_size=10))
def test_any_split_yields_same_packet(name: str, cuts: list[int]) -> None:
    frame = VECTORS[name]
    framer = StreamFramer(MAX_FRAME_BYTES)
    packets = []
    start = 0
    for size in [*cuts, len(frame)]:
        framer.feed(frame[start : start + size])
        start += size
        while (packet := framer.next_packet()) is not None:
            packets.append(packet)
    assert packets == [frame]
