"""MQTT topic patterns and payload decoding, without a broker."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetpulse.config import load_settings
from fleetpulse.ingest.protocols.mqtt.decoding import decode_message
from fleetpulse.ingest.protocols.mqtt.topics import TopicPattern
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.vocabulary import INVALID_JSON, MISSING_FIELD
from tests.ingest.protocols.plausibility import check_plausible

SETTINGS = load_settings(environ={})
PATTERN = TopicPattern("fleet/{device_id}/telemetry")


def test_subscription_shared() -> None:
    assert PATTERN.subscription("ingest") == "$share/ingest/fleet/+/telemetry"


def test_subscription_plain() -> None:
    assert PATTERN.subscription("") == "fleet/+/telemetry"


def test_device_id_from_topic() -> None:
    assert PATTERN.device_id("fleet/truck-7/telemetry") == "truck-7"


def test_device_id_other_shape() -> None:
    assert PATTERN.device_id("fleet/truck-7/status/x") is None


def test_pattern_without_placeholder() -> None:
    assert TopicPattern("fleet/all").device_id("fleet/all") is None


def test_topic_fills_missing_device_id() -> None:
    payload = msgspec.json.encode([{"ts": now_ms(), "lat": 1.0, "lon": 2.0}])
    batch = decode_message(payload, "from-topic", now_ms(), SETTINGS)
    assert [record.device_id for record in batch.records] == ["from-topic"]


def test_missing_device_id_without_topic() -> None:
    payload = msgspec.json.encode({"ts": now_ms(), "lat": 1.0, "lon": 2.0})
    batch = decode_message(payload, None, now_ms(), SETTINGS)
    assert batch.records == []
    assert [reject.reason for reject in batch.rejects] == [MISSING_FIELD]


def test_invalid_json_is_one_reject() -> None:
    batch = decode_message(b"{oops", "dev", now_ms(), SETTINGS)
    assert [reject.reason for reject in batch.rejects] == [INVALID_JSON]
    assert batch.rejects[0].device_id == "dev"
    assert batch.rejects[0].raw == b"{oops"



def test_deeply_nested_payload_is_one_reject() -> None:
    """A payload nested too deep to parse is a dead letter, so the message can be acked."""
    batch = decode_message(b"[" * 100_000, "dev", now_ms(), SETTINGS)
    assert [reject.reason for reject in batch.rejects] == [INVALID_JSON]
    assert batch.records == []


_GOOD = msgspec.json.encode(
    [{"ts": now_ms(), "lat": 48.1, "lon": 11.5, "speed_kmh": 30.0, "heading_deg": 90.0}]
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.one_of(st.none(), st.text(max_size=10)))
def test_fuzz_random_payload(payload: bytes, topic_device_id: str | None) -> None:
    """Random payloads never raise: each yields records or rejects with a reason."""
    batch = decode_message(payload, topic_device_id, now_ms(), SETTINGS)
    for reject in batch.rejects:
        assert reject.reason
        assert reject.detail
    for record in batch.records:
        assert isinstance(record, Record)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(_GOOD) - 1), st.binary(min_size=1, max_size=3))
def test_fuzz_mutated_payload(position: int, insert: bytes) -> None:
    """A valid payload with bytes overwritten decodes to plausible records or rejects."""
    payload = bytearray(_GOOD)
    payload[position : position + len(insert)] = insert
    batch = decode_message(bytes(payload), "dev", now_ms(), SETTINGS)
    assert len(batch.records) + len(batch.rejects) >= 1
    for record in batch.records:
        assert -90 <= record.lat <= 90
        assert -180 <= record.lon <= 180
        assert record.speed_kmh is None or 0 <= record.speed_kmh <= 400


def test_good_payload_plausible() -> None:
    (element,) = msgspec.json.decode(_GOOD)
    check_plausible(msgspec.convert({**element, "device_id": "dev"}, RecordIn))
