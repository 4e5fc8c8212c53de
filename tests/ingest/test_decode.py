"""Tests of request body decoding: body forms, every reject reason, fast path and fallback."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from fleetpulse.config import Settings
from fleetpulse.ingest import decode
from fleetpulse.ingest.decode import BodyError, body_format, decode_body
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.model.timestamps import parse_rfc3339_ms
from fleetpulse.model.validate import ValidatedBatch
from fleetpulse.model.vocabulary import (
    INVALID_DEVICE_ID,
    INVALID_JSON,
    INVALID_TYPE,
    MISSING_FIELD,
    NOT_FINITE,
    OUT_OF_RANGE,
    REJECT_REASONS,
    TOO_LARGE,
    TS_IN_FUTURE,
    TS_INVALID,
    TS_NO_TIMEZONE,
    TS_TOO_OLD,
    UNKNOWN_FIELD,
    UNSUPPORTED_MEDIA_TYPE,
)
from tests.ingest.conftest import json_body, make_settings, ndjson_body

RECEIVED_AT_MS = parse_rfc3339_ms("2026-05-09T12:00:00Z")
JSON = "application/json"
NDJSON = "application/x-ndjson"


def record(**fields: Any) -> dict[str, Any]:
    """A valid wire record at the fixed time of receipt; keywords replace or add fields."""
    base: dict[str, Any] = {"device_id": "truck-1", "ts": RECEIVED_AT_MS, "lat": 52.5, "lon": 13.4}
    base.update(fields)
    return base


def decode_json(items: list[Any], settings: Settings | None = None) -> ValidatedBatch:
    return decode_body(json_body(*items), JSON, RECEIVED_AT_MS, settings or make_settings())


def reject_of(item: Any, settings: Settings | None = None) -> Any:
    """Decode a batch of a good record and ``item``; return the one reject."""
    batch = decode_json([record(), item], settings)
    assert len(batch.records) == 1
    assert len(batch.rejects) == 1
    return batch.rejects[0]


# One case per reject reason: the bad record, its reason and words its detail must contain.
REASON_CASES = [
    ({"device_id": "a", "ts": RECEIVED_AT_MS, "lon": 1.0}, MISSING_FIELD, ["lat"]),
    (record(lat="north"), INVALID_TYPE, ["$.lat", "str"]),
    (record(ignition="yes"), INVALID_TYPE, ["$.ignition"]),
    (record(ts=1.5), INVALID_TYPE, ["$.ts"]),
    ("not an object", INVALID_TYPE, ["JSON object"]),
    (record(lat=91.5), OUT_OF_RANGE, ["$.lat", "91.5", "-90", "90"]),
    (record(lon=-180.5), OUT_OF_RANGE, ["$.lon", "-180"]),
    (record(speed_kmh=400.5), OUT_OF_RANGE, ["$.speed_kmh", "400"]),
    (record(heading_deg=361), OUT_OF_RANGE, ["$.heading_deg", "360"]),
    (record(fuel_pct=-1), OUT_OF_RANGE, ["$.fuel_pct", "100"]),
    (record(dtc=["P0001", ""]), OUT_OF_RANGE, ["$.dtc[1]"]),
    (record(lat="NaN"), NOT_FINITE, ["$.lat", "NaN"]),
    (record(speed_kmh="Infinity"), NOT_FINITE, ["$.speed_kmh"]),
    (record(fuel_pct="-Infinity"), NOT_FINITE, ["$.fuel_pct"]),
    (record(battery_v="inf"), NOT_FINITE, ["$.battery_v"]),
    (record(ts=RECEIVED_AT_MS + 301_000), TS_IN_FUTURE, ["max_future_skew_s"]),
    (record(ts=RECEIVED_AT_MS - 31 * 86_400_000), TS_TOO_OLD, ["max_age_days"]),
    (record(ts="2026-05-09T11:59:00"), TS_NO_TIMEZONE, ["offset"]),
    (record(ts="2026-05-09T11:59:00+01"), TS_INVALID, ["+hh:mm"]),
    (record(ts="yesterday"), TS_INVALID, ["yesterday"]),
    (record(ts="2026-02-30T11:59:00Z"), TS_INVALID, ["day"]),
    (record(device_id=""), INVALID_DEVICE_ID, ["device_id", "64"]),
    (record(device_id="x" * 65), INVALID_DEVICE_ID, ["65", "64"]),
    (record(device_id="truck\u0001"), INVALID_DEVICE_ID, ["control character"]),
    (record(speed=50), UNKNOWN_FIELD, ["`speed`", "speed_kmh"]),
    (record(attributes={f"k{i}": i for i in range(65)}), TOO_LARGE, ["65 keys", "64"]),
    (record(attributes={"blob": "x" * 5000}), TOO_LARGE, ["bytes", "4096"]),
    (record(attributes={"a": {"b": {"c": {"d": {"e": 1}}}}}), TOO_LARGE, ["nested", "4"]),
    (record(dtc=["P0001"] * 33), TOO_LARGE, ["$.dtc", "33"]),
]


@pytest.mark.parametrize(("item", "reason", "words"), REASON_CASES)
def test_reject_reason_and_detail(item: Any, reason: str, words: list[str]) -> None:
    reject = reject_of(item)

    assert reject.reason == reason
    assert reject.index == 1
    for word in words:
        assert word in reject.detail


@pytest.mark.parametrize(("item", "reason", "words"), REASON_CASES)
def test_reject_reason_same_in_ndjson(item: Any, reason: str, words: list[str]) -> None:
    batch = decode_body(ndjson_body(record(), item), NDJSON, RECEIVED_AT_MS, make_settings())

    assert [reject.reason for reject in batch.rejects] == [reason]
    assert batch.rejects[0].detail.startswith("line 2: ")


def test_reject_number_overflow_not_finite() -> None:
    body = b'[{"device_id": "a", "ts": %d, "lat": 1e999, "lon": 0}]' % RECEIVED_AT_MS

    batch = decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert batch.rejects[0].reason == NOT_FINITE
    assert "$.lat" in batch.rejects[0].detail
    assert batch.rejects[0].device_id == "a"


def test_invalid_utf8_in_array_rejects_record() -> None:
    good = b'{"device_id": "a", "ts": %d, "lat": 1, "lon": 0}' % RECEIVED_AT_MS
    body = b'[' + good + b', {"device_id": "\xff", "ts": 1, "lat": 1, "lon": 0}]'

    batch = decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert len(batch.records) == 1
    assert batch.rejects[0].index == 1
    assert batch.rejects[0].reason == INVALID_JSON
    assert "the record is not valid JSON" in batch.rejects[0].detail
    assert "line" not in batch.rejects[0].detail


def test_reject_overflow_in_attributes() -> None:
    body = b'{"device_id": "a", "ts": %d, "lat": 1, "lon": 0, "attributes": {"x": -1e999}}' % (
        RECEIVED_AT_MS
    )

    batch = decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert batch.rejects[0].reason == NOT_FINITE


def test_epoch_seconds_named_in_detail() -> None:
    seconds = RECEIVED_AT_MS // 1000

    reject = reject_of(record(ts=seconds))

    assert reject.reason == TS_TOO_OLD
    assert "epoch seconds" in reject.detail
    assert str(seconds * 1000) in reject.detail


def test_epoch_microseconds_named_in_detail() -> None:
    reject = reject_of(record(ts=RECEIVED_AT_MS * 1000))

    assert reject.reason == TS_IN_FUTURE
    assert "microseconds" in reject.detail


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("heading", "heading_deg"),
        ("timestamp", "ts"),
        ("latitude", "lat"),
        ("lng", "lon"),
        ("speed", "speed_kmh"),
        ("fuel_pc", "fuel_pct"),
    ],
)
def test_unknown_field_suggests_name(name: str, suggestion: str) -> None:
    reject = reject_of(record(**{name: 1}))

    assert reject.reason == UNKNOWN_FIELD
    assert f"did you mean `{suggestion}`" in reject.detail


def test_unknown_field_without_suggestion_lists_fields() -> None:
    reject = reject_of(record(colour="red"))

    assert "`colour`" in reject.detail
    assert "attributes" in reject.detail


def test_quoted_number_hint() -> None:
    reject = reject_of(record(speed_kmh="42.5"))

    assert reject.reason == INVALID_TYPE
    assert "without quotes" in reject.detail


def test_reject_keeps_raw_and_device_id() -> None:
    bad = record(device_id="van-7", lat=95.0)

    reject = reject_of(bad)

    assert msgspec.json.decode(reject.raw) == bad
    assert reject.device_id == "van-7"


def test_reject_raw_truncated() -> None:
    settings = make_settings(dead_letter_raw_bytes=16)

    reject = reject_of(record(lat=95.0, attributes={"note": "x" * 100}), settings)

    assert len(reject.raw) == 16


def test_timestamp_reject_keeps_received_bytes() -> None:
    # Rejected after decoding on the fast path: raw must still be the bytes sent.
    body = b'[{"device_id":"a","ts":"2026-05-09T11:59:00","lat":1,"lon":2}]'

    batch = decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert batch.rejects[0].raw == body[1:-1]


def test_mixed_batch_keeps_good_records() -> None:
    items: list[Any] = [record(device_id=f"truck-{i}") for i in range(5)]
    items.insert(2, record(lat=100.0))
    items.insert(4, 42)

    batch = decode_json(items)

    assert [r.device_id for r in batch.records] == [f"truck-{i}" for i in range(5)]
    assert [reject.index for reject in batch.rejects] == [2, 4]


def test_accepted_record_fields_copied() -> None:
    full = record(
        ts="2026-05-09T13:59:30.250+02:00",
        speed_kmh=61.5,
        heading_deg=90.0,
        altitude_m=34.0,
        accuracy_m=4.5,
        ignition=True,
        engine_rpm=2100.0,
        coolant_c=88.0,
        fuel_pct=55.0,
        battery_v=13.8,
        odometer_m=1_234_567.0,
        dtc=["P0301"],
        valid=True,
        attributes={"driver": "d-1"},
    )

    batch = decode_body(json_body(full), JSON, RECEIVED_AT_MS, make_settings(), "test")

    accepted = batch.records[0]
    wire = msgspec.structs.asdict(msgspec.convert(full, RecordIn))
    for name, value in wire.items():
        if name != "ts":
            assert getattr(accepted, name) == value, name
    assert accepted.ts_ms == RECEIVED_AT_MS - 29_750
    assert accepted.received_at_ms == RECEIVED_AT_MS
    assert accepted.source == "test"


def test_single_object_body() -> None:
    batch = decode_body(msgspec.json.encode(record()), JSON, RECEIVED_AT_MS, make_settings())

    assert len(batch.records) == 1
    assert batch.rejects == []


def test_single_object_reject_index_zero() -> None:
    body = msgspec.json.encode(record(lat=-91.0))

    batch = decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert batch.records == []
    assert batch.rejects[0].index == 0
    assert batch.rejects[0].raw == body


def test_empty_array_accepted() -> None:
    batch = decode_body(b"[]", JSON, RECEIVED_AT_MS, make_settings())

    assert batch.records == []
    assert batch.rejects == []


# --- fast path and fallback ------------------------------------------------------------------


def fallback(items: list[Any], settings: Settings) -> ValidatedBatch:
    """Run the one-record-at-a-time path directly on the elements of a JSON array."""
    elements = [msgspec.json.encode(item) for item in items]
    return decode._validate_each(elements, None, RECEIVED_AT_MS, settings, "http")


def test_fast_path_matches_fallback() -> None:
    settings = make_settings()
    items = [
        record(device_id="a"),
        record(device_id="b", ts="2026-05-09T11:00:00Z", speed_kmh=30.0),
        record(device_id="c", ts=RECEIVED_AT_MS + 10**9),
        record(device_id="d", attributes={f"k{i}": i for i in range(100)}),
        record(device_id="e", ts="2026-05-09 11:00:00"),
    ]

    fast = decode_body(json_body(*items), JSON, RECEIVED_AT_MS, settings)
    slow = fallback(items, settings)

    assert fast.records == slow.records
    assert fast.rejects == slow.rejects
    assert len(fast.rejects) == 3


def test_fallback_keeps_good_records_of_fast_path() -> None:
    settings = make_settings()
    good = [record(device_id=f"v{i}", ts=RECEIVED_AT_MS - i) for i in range(20)]

    clean = decode_body(json_body(*good), JSON, RECEIVED_AT_MS, settings)
    mixed = decode_body(json_body(*good, record(lat="x")), JSON, RECEIVED_AT_MS, settings)

    assert mixed.records == clean.records
    assert len(mixed.rejects) == 1


def test_ndjson_fast_path_matches_line_path() -> None:
    settings = make_settings()
    items = [record(device_id="a"), record(device_id="b", ts="2026-05-09T11:00:00")]

    fast = decode_body(ndjson_body(*items), NDJSON, RECEIVED_AT_MS, settings)
    # A blank line makes the line count differ, which forces the line-by-line path.
    slow = decode_body(b"\n" + ndjson_body(*items), NDJSON, RECEIVED_AT_MS, settings)

    assert fast.records == slow.records
    assert [r.reason for r in fast.rejects] == [r.reason for r in slow.rejects]
    assert fast.rejects[0].raw == slow.rejects[0].raw
    assert fast.rejects[0].detail.startswith("line 2: ")
    assert slow.rejects[0].detail.startswith("line 3: ")


def test_json_and_ndjson_same_records() -> None:
    settings = make_settings()
    items = [record(device_id=f"v{i}") for i in range(10)]

    from_json = decode_body(json_body(*items), JSON, RECEIVED_AT_MS, settings)
    from_ndjson = decode_body(ndjson_body(*items), NDJSON, RECEIVED_AT_MS, settings)

    assert from_json.records == from_ndjson.records


# --- NDJSON ----------------------------------------------------------------------------------


def test_ndjson_bad_line_rejects_only_it() -> None:
    body = (
        msgspec.json.encode(record(device_id="a"))
        + b"\n{not json\n\n"
        + msgspec.json.encode(record(device_id="b"))
        + b"\r\n"
    )

    batch = decode_body(body, NDJSON, RECEIVED_AT_MS, make_settings())

    assert [r.device_id for r in batch.records] == ["a", "b"]
    assert len(batch.rejects) == 1
    assert batch.rejects[0].reason == INVALID_JSON
    assert batch.rejects[0].index == 1
    assert batch.rejects[0].detail.startswith("line 2: ")
    assert batch.rejects[0].raw == b"{not json"


def test_ndjson_blank_lines_skipped() -> None:
    body = b"\n\n" + ndjson_body(record(), record()) + b"\n  \n"

    batch = decode_body(body, NDJSON, RECEIVED_AT_MS, make_settings())

    assert len(batch.records) == 2
    assert batch.rejects == []


def test_ndjson_line_with_nan_literal() -> None:
    body = ndjson_body(record()) + b'{"device_id":"a","ts":1,"lat":NaN,"lon":0}\n'

    batch = decode_body(body, NDJSON, RECEIVED_AT_MS, make_settings())

    assert batch.rejects[0].reason == INVALID_JSON
    assert "NaN" in batch.rejects[0].detail


def test_ndjson_jsonl_type_accepted() -> None:
    batch = decode_body(ndjson_body(record()), "application/jsonl", RECEIVED_AT_MS, make_settings())

    assert len(batch.records) == 1


def test_ndjson_empty_body_has_no_records() -> None:
    batch = decode_body(b"", NDJSON, RECEIVED_AT_MS, make_settings())

    assert batch.records == []
    assert batch.rejects == []


# --- whole-request errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'[{"device_id": "a", "lat": NaN}]', ["byte", "NaN and Infinity are not JSON"]),
        (b'[{"device_id": "a"', ["ends before"]),
        (b'{"device_id": 5, oops}', ["byte"]),
        (b"", ["empty"]),
        (b"   \n", ["empty"]),
        (b'[{"a": 1}] trailing', ["trailing"]),
    ],
)
def test_malformed_json_is_request_error(body: bytes, words: list[str]) -> None:
    with pytest.raises(BodyError) as caught:
        decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert caught.value.reason == INVALID_JSON
    for word in words:
        assert word in caught.value.message


@pytest.mark.parametrize("body", [b"42", b'"text"', b"null", b"true"])
def test_scalar_body_is_invalid_type(body: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    assert caught.value.reason == INVALID_TYPE


def test_body_over_max_bytes() -> None:
    settings = make_settings(max_body_bytes=100)

    with pytest.raises(BodyError) as caught:
        decode_body(json_body(record(), record()), JSON, RECEIVED_AT_MS, settings)

    assert caught.value.reason == TOO_LARGE
    assert "max_body_bytes" in caught.value.message


@pytest.mark.parametrize("content_type", [JSON, NDJSON])
def test_batch_over_max_records(content_type: str) -> None:
    settings = make_settings(max_batch_records=3)
    items = [record() for _ in range(4)]
    body = json_body(*items) if content_type == JSON else ndjson_body(*items)

    with pytest.raises(BodyError) as caught:
        decode_body(body, content_type, RECEIVED_AT_MS, settings)

    assert caught.value.reason == TOO_LARGE
    assert "max_batch_records" in caught.value.message


def test_batch_over_max_records_on_fallback() -> None:
    settings = make_settings(max_batch_records=3)

    with pytest.raises(BodyError) as caught:
        decode_json([record(), record(), record(), record(lat=100)], settings)

    assert caught.value.reason == TOO_LARGE


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("Application/JSON;charset=UTF-8", "json"),
        ('application/json; charset="utf-8"', "json"),
        ("application/x-ndjson", "ndjson"),
        ("application/jsonl", "ndjson"),
    ],
)
def test_body_format_accepted(content_type: str, expected: str) -> None:
    assert body_format(content_type) == expected


@pytest.mark.parametrize(
    ("content_type", "words"),
    [
        (None, ["Content-Type: application/json"]),
        ("", ["Content-Type: application/json"]),
        ("text/plain", ["text/plain", "application/json", "application/x-ndjson"]),
        ("application/json-seq", ["application/json-seq"]),
        ("application/json; charset=latin-1", ["latin-1", "UTF-8"]),
    ],
)
def test_body_format_rejected(content_type: str | None, words: list[str]) -> None:
    with pytest.raises(BodyError) as caught:
        body_format(content_type)

    assert caught.value.reason == UNSUPPORTED_MEDIA_TYPE
    for word in words:
        assert word in caught.value.message


# --- property test ---------------------------------------------------------------------------

FIELD_NAMES = [*RecordIn.__struct_fields__, "speed", "timestamp", "extra"]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["NaN", "Infinity", "-inf", "2026-05-09T11:00:00Z", "2026-05-09 11:00"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)
# Records near the valid shape reach the timestamp and attribute checks; random objects
# and scalars reach the msgspec error mapping.
json_records = (
    st.fixed_dictionaries({}, optional={name: json_values for name in FIELD_NAMES})
    | st.builds(
        lambda extra: record(**extra),
        st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=3),
    )
    | json_values
)


def check_batch(batch: ValidatedBatch, count: int) -> None:
    assert len(batch.records) + len(batch.rejects) == count
    for reject in batch.rejects:
        assert reject.reason in REJECT_REASONS
        assert reject.detail
    indices = [reject.index for reject in batch.rejects]
    assert indices == sorted(set(indices))
    for accepted in batch.records:
        assert isinstance(accepted, Record)
        assert accepted.received_at_ms == RECEIVED_AT_MS


@given(st.lists(json_records, max_size=8))
@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_random_json_never_crashes(items: list[Any]) -> None:
    body = json.dumps(items).encode()

    batch = decode_body(body, JSON, RECEIVED_AT_MS, make_settings())

    check_batch(batch, len(items))


@given(st.lists(json_records, max_size=8), st.booleans())
@hypothesis_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_random_ndjson_never_crashes(items: list[Any], blank_line: bool) -> None:
    lines = [json.dumps(item).encode() for item in items]
    if blank_line:
        lines.insert(len(lines) // 2, b"")

    batch = decode_body(b"\n".join(lines), NDJSON, RECEIVED_AT_MS, make_settings())

    check_batch(batch, len(items))


@given(st.binary(max_size=200))
@hypothesis_settings(max_examples=300)
def test_random_bytes_reject_or_raise(body: bytes) -> None:
    try:
        batch = decode_body(body, NDJSON, RECEIVED_AT_MS, make_settings())
    except BodyError as exc:
        assert exc.reason in REJECT_REASONS
        return
    for reject in batch.rejects:
        assert reject.reason in REJECT_REASONS


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_deeply_nested_body_is_invalid_json(content_type: str) -> None:
    nested = b'{"device_id":"a","ts":1,"lat":1,"lon":1,"attributes":{"x":' + b"[" * 100_000
    nested += b"]" * 100_000 + b"}}"
    with pytest.raises(BodyError) as caught:
        decode_body(nested, content_type, 1_700_000_000_000, Settings())
    assert caught.value.reason == "invalid_json"
