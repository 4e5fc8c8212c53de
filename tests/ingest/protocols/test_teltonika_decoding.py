"""The Teltonika decoder on the published vectors, refusals and encoder round trips."""

from __future__ import annotations

import pytest

from fleetpulse.ingest.protocols.teltonika.crc import crc16_ibm
from fleetpulse.ingest.protocols.teltonika.decoding import (
    CODEC_8,
    CODEC_8_EXTENDED,
    CODEC_16,
    decode_packet,
)
from fleetpulse.ingest.protocols.teltonika.encoding import encode_packet
from fleetpulse.ingest.protocols.teltonika.errors import FrameError
from fleetpulse.ingest.protocols.teltonika.mapping import FMB, MODELS, to_record_in
from fleetpulse.model.timestamps import now_ms
from tests.ingest.protocols.plausibility import check_accepted, check_plausible
from tests.ingest.protocols.teltonika_frames import IMEI, TC_1, TC_2, TC_3, TC_4, avl_record


def test_tc1_codec8_one_record() -> None:
    packet = decode_packet(TC_1)
    (record,) = packet.records
    assert packet.codec_id == CODEC_8
    assert record.ts_ms == 1560161086000
    assert record.priority == 1
    assert (record.lat, record.lon, record.altitude_m) == (0.0, 0.0, 0)
    assert (record.angle_deg, record.satellites, record.speed_kmh) == (0, 0, 0)
    assert record.event_io_id == 1
    assert record.io == {1: 1, 21: 3, 66: 24079, 241: 24602, 78: 0}


def test_tc2_codec8_two_records() -> None:
    records = decode_packet(TC_2).records
    assert [r.ts_ms for r in records] == [1560160861000, 1560160879000]
    assert [r.event_io_id for r in records] == [1, 1]
    assert [r.io for r in records] == [{1: 0}, {1: 1}]


def test_tc3_codec8_extended() -> None:
    packet = decode_packet(TC_3)
    (record,) = packet.records
    assert packet.codec_id == CODEC_8_EXTENDED
    assert record.ts_ms == 1560166592000
    assert record.event_io_id == 1
    assert record.io == {1: 1, 17: 29, 16: 22949000, 11: 893700218, 14: 500686954}


def test_tc4_position_and_io() -> None:
    (record,) = decode_packet(TC_4).records
    assert record.ts_ms == 1720003694000
    assert record.lat == pytest.approx(42.373737)
    assert record.lon == pytest.approx(42.373737)
    assert (record.altitude_m, record.angle_deg) == (731, 262)
    assert (record.satellites, record.speed_kmh) == (5, 0)
    assert record.event_io_id == 239
    assert record.io == {239: 1, 240: 1, 1: 0, 66: 12618, 67: 4145, 9: 43}


def test_tc4_maps_fmb_fields() -> None:
    (avl,) = decode_packet(TC_4).records
    record = to_record_in(IMEI, avl, FMB)
    assert record.device_id == IMEI
    assert record.ts == 1720003694000
    assert record.ignition is True
    assert record.battery_v == pytest.approx(12.618)
    assert record.valid is True
    assert record.heading_deg == 262.0
    assert record.attributes is not None
    assert record.attributes["internal_battery_v"] == pytest.approx(4.145)
    assert record.attributes["movement"] is True
    assert record.attributes["io_9"] == 43
    check_accepted(record, avl.ts_ms + 1000)


def test_tc1_without_fix_keeps_engine_values() -> None:
    (avl,) = decode_packet(TC_1).records
    record = to_record_in(IMEI, avl, FMB)
    assert (record.lat, record.lon) == (0.0, 0.0)
    assert record.valid is False
    assert record.speed_kmh is None
    assert record.battery_v == pytest.approx(24.079)
    assert record.attributes is not None
    assert record.attributes["gsm_signal"] == 3
    assert record.attributes["io_241"] == 24602
    check_accepted(record, avl.ts_ms + 1000)


@pytest.mark.parametrize("frame", [TC_1, TC_2, TC_3, TC_4], ids=["TC-1", "TC-2", "TC-3", "TC-4"])
def test_vectors_plausible(frame: bytes) -> None:
    for avl in decode_packet(frame).records:
        record = to_record_in(IMEI, avl, FMB)
        check_plausible(record)
        check_accepted(record, avl.ts_ms + 1000)


def test_tc3_odometer_mapped() -> None:
    (avl,) = decode_packet(TC_3).records
    record = to_record_in(IMEI, avl, FMB)
    assert record.odometer_m == 22949000.0
    assert record.ignition is None


def test_raw_model_keeps_every_id() -> None:
    (avl,) = decode_packet(TC_4).records
    attributes = to_record_in(IMEI, avl, MODELS["raw"]).attributes
    assert attributes is not None
    assert {attributes[f"io_{i}"] for i in (239, 66)} == {1, 12618}


def _replace(frame: bytes, offset: int, value: bytes) -> bytes:
    return frame[:offset] + value + frame[offset + len(value) :]


def test_crc_of_published_vector() -> None:
    assert crc16_ibm(TC_4[8:-4]) == 0xC897


def test_refuses_crc_mismatch() -> None:
    with pytest.raises(FrameError) as caught:
        decode_packet(_replace(TC_4, len(TC_4) - 1, b"\x00"))
    assert caught.value.problem == "crc_mismatch"


def test_refuses_unknown_codec() -> None:
    records = [avl_record(now_ms())]
    frame = encode_packet(CODEC_8, records)
    # Codec 12 (0x0C) carries commands, not AVL records. Recompute the CRC so that only
    # the codec id is wrong.
    changed = _replace(frame, 8, b"\x0c")
    changed = changed[:-4] + crc16_ibm(changed[8:-4]).to_bytes(4, "big")
    with pytest.raises(FrameError) as caught:
        decode_packet(changed)
    assert caught.value.problem == "unknown_codec"


def test_refuses_record_count_mismatch() -> None:
    changed = _replace(TC_2, len(TC_2) - 5, b"\x01")
    changed = changed[:-4] + crc16_ibm(changed[8:-4]).to_bytes(4, "big")
    with pytest.raises(FrameError) as caught:
        decode_packet(changed)
    assert caught.value.problem == "record_count_mismatch"


@pytest.mark.parametrize("codec_id", [CODEC_8, CODEC_8_EXTENDED, CODEC_16])
def test_encode_decode_round_trip(codec_id: int) -> None:
    ts_ms = now_ms()
    generation_type = 3 if codec_id == CODEC_16 else None
    records = [
        avl_record(ts_ms, generation_type=generation_type),
        avl_record(
            ts_ms + 1000,
            lat=-33.8688,
            lon=151.2093,
            altitude_m=-20,
            speed_kmh=130,
            generation_type=generation_type,
        ),
    ]
    if codec_id == CODEC_8_EXTENDED:
        records[1].io[385] = b"\x01\x02\x03"
        records[1].io[300] = 5
    decoded = decode_packet(encode_packet(codec_id, records))
    assert decoded.codec_id == codec_id
    assert decoded.records == records


def test_codec16_generation_type_in_attributes() -> None:
    ts_ms = now_ms()
    frame = encode_packet(CODEC_16, [avl_record(ts_ms, generation_type=2, event_io_id=300)])
    (avl,) = decode_packet(frame).records
    record = to_record_in(IMEI, avl, FMB)
    assert record.attributes is not None
    assert record.attributes["generation_type"] == 2
    assert record.attributes["event_io"] == 300
    check_plausible(record)
    check_accepted(record, now_ms())


def test_variable_length_value_hex() -> None:
    frame = encode_packet(CODEC_8_EXTENDED, [avl_record(now_ms(), io={385: b"\xab\xcd"})])
    (avl,) = decode_packet(frame).records
    attributes = to_record_in(IMEI, avl, FMB).attributes
    assert attributes is not None
    assert attributes["io_385"] == "abcd"


def test_can_coolant_signed() -> None:
    frame = encode_packet(CODEC_8, [avl_record(now_ms(), io={115: 0x10000 - 55, 89: 40})])
    (avl,) = decode_packet(frame).records
    record = to_record_in(IMEI, avl, FMB)
    assert record.coolant_c == pytest.approx(-5.5)
    assert record.fuel_pct == 40.0
