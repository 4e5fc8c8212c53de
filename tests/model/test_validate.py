"""Tests of validate_record and validate_decoded on RecordIn objects built in code."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from fleetpulse.config import IngestSettings, Settings
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.model.timestamps import parse_rfc3339_ms
from fleetpulse.model.validate import (
    FLOAT_RANGES,
    REQUIRED_FIELDS,
    Reject,
    reject_from_error,
    validate_decoded,
    validate_record,
)
from fleetpulse.model.vocabulary import (
    INVALID_DEVICE_ID,
    INVALID_TYPE,
    MISSING_FIELD,
    NOT_FINITE,
    OUT_OF_RANGE,
    TOO_LARGE,
    TS_IN_FUTURE,
    TS_TOO_OLD,
)

RECEIVED_AT_MS = parse_rfc3339_ms("2026-05-09T12:00:00Z")
SETTINGS = Settings()


def wire(**fields: Any) -> RecordIn:
    base: dict[str, Any] = {"device_id": "obd-1", "ts": RECEIVED_AT_MS, "lat": 48.1, "lon": 11.6}
    base.update(fields)
    return RecordIn(**base)


def check(record: RecordIn, settings: Settings = SETTINGS) -> Record | Reject:
    return validate_record(record, RECEIVED_AT_MS, settings, index=3, source="obd")


def test_valid_record_accepted() -> None:
    result = check(wire(speed_kmh=80.0, ts="2026-05-09T11:59:59.5Z"))

    assert isinstance(result, Record)
    assert result.ts_ms == RECEIVED_AT_MS - 500
    assert result.received_at_ms == RECEIVED_AT_MS
    assert result.source == "obd"
    assert result.speed_kmh == 80.0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"lat": 90.5}, OUT_OF_RANGE),
        ({"lon": -181.0}, OUT_OF_RANGE),
        ({"speed_kmh": 401.0}, OUT_OF_RANGE),
        ({"heading_deg": -0.1}, OUT_OF_RANGE),
        ({"fuel_pct": 100.5}, OUT_OF_RANGE),
        ({"lat": math.nan}, NOT_FINITE),
        ({"speed_kmh": math.inf}, NOT_FINITE),
        ({"odometer_m": -math.inf}, NOT_FINITE),
        ({"lat": None}, MISSING_FIELD),
        ({"device_id": ""}, INVALID_DEVICE_ID),
        ({"device_id": "x" * 65}, INVALID_DEVICE_ID),
        ({"device_id": "bad\nid"}, INVALID_DEVICE_ID),
        ({"device_id": 17}, INVALID_DEVICE_ID),
        ({"speed_kmh": "fast"}, INVALID_TYPE),
        ({"ts": 1.5}, INVALID_TYPE),
        ({"dtc": ["P0001"] * 33}, TOO_LARGE),
        ({"dtc": ["P" * 17]}, OUT_OF_RANGE),
        ({"ts": RECEIVED_AT_MS + 400_000}, TS_IN_FUTURE),
        ({"ts": 0}, TS_TOO_OLD),
        ({"attributes": {"bad": object()}}, INVALID_TYPE),
    ],
)
def test_built_record_rejected(fields: dict[str, Any], reason: str) -> None:
    result = check(wire(**fields))

    assert isinstance(result, Reject)
    assert result.reason == reason
    assert result.index == 3


def test_reject_raw_is_record_json() -> None:
    result = check(wire(lat=95.0))

    assert isinstance(result, Reject)
    assert msgspec.json.decode(result.raw)["lat"] == 95.0
    assert result.device_id == "obd-1"


def test_reject_keeps_no_invalid_device_id() -> None:
    result = check(wire(device_id="x" * 65))

    assert isinstance(result, Reject)
    assert result.device_id is None


def test_range_bounds_inclusive() -> None:
    for name, low, high in FLOAT_RANGES:
        for value in (low, high):
            result = check(wire(**{name: value}))
            assert isinstance(result, Record), (name, value)


def test_ranges_read_from_record_in() -> None:
    ranges = {name: (low, high) for name, low, high in FLOAT_RANGES}

    assert ranges["lat"] == (-90.0, 90.0)
    assert ranges["speed_kmh"] == (0.0, 400.0)
    assert REQUIRED_FIELDS == ("device_id", "ts", "lat", "lon")


@pytest.mark.parametrize(
    ("attributes", "accepted"),
    [
        ({"a": {"b": {"c": {"d": 1}}}}, True),
        ({"a": {"b": {"c": {"d": {}}}}}, False),
        ({"a": [[[1]]]}, True),
        ({"a": [[[[1]]]]}, False),
        ({f"k{i}": i for i in range(64)}, True),
        ({f"k{i}": i for i in range(65)}, False),
    ],
)
def test_attribute_limits(attributes: dict[str, Any], accepted: bool) -> None:
    result = check(wire(attributes=attributes))

    assert isinstance(result, Record) is accepted


def test_attribute_bytes_limit() -> None:
    settings = Settings(ingest=IngestSettings(max_attributes_bytes=20))

    small = check(wire(attributes={"a": "x" * 10}), settings)
    large = check(wire(attributes={"a": "x" * 20}), settings)

    assert isinstance(small, Record)
    assert isinstance(large, Reject)
    assert "max_attributes_bytes" in large.detail


def test_window_edges_accepted() -> None:
    ingest = SETTINGS.ingest
    newest = RECEIVED_AT_MS + int(ingest.max_future_skew_s * 1000)
    oldest = RECEIVED_AT_MS - int(ingest.max_age_days * 86_400_000)

    assert isinstance(check(wire(ts=newest)), Record)
    assert isinstance(check(wire(ts=oldest)), Record)
    assert isinstance(check(wire(ts=newest + 1)), Reject)
    assert isinstance(check(wire(ts=oldest - 1)), Reject)


def test_decoded_indices_mapped() -> None:
    records = [wire(), wire(ts=0), wire()]

    batch = validate_decoded(records, RECEIVED_AT_MS, SETTINGS, indices=[0, 4, 7])

    assert len(batch.records) == 2
    assert batch.rejects[0].index == 4


def test_reject_from_error_reads_value() -> None:
    raw = b'{"device_id": "obd-1", "ts": 1, "lat": 123.0, "lon": 0}'
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(raw, type=RecordIn)

    reject = reject_from_error(caught.value, raw, 9, SETTINGS)

    assert reject.reason == OUT_OF_RANGE
    assert reject.index == 9
    assert "123" in reject.detail
    assert reject.device_id == "obd-1"
    assert reject.raw == raw
