"""OsmAnd parameter and JSON body decoding, with the Traccar server's published test requests."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetpulse.ingest.protocols.osmand.decoding import (
    ATTRIBUTE_BATTERY_PCT,
    KMH_PER_UNIT,
    MAX_PARAMETERS,
    OsmandRequestError,
    attribute_value,
    decode_parameters,
    parse_parameters,
    parse_timestamp_ms,
)
from fleetpulse.ingest.protocols.osmand.json_body import decode_json_body
from fleetpulse.model.record import RecordIn
from fleetpulse.model.vocabulary import (
    INVALID_JSON,
    INVALID_TYPE,
    MISSING_FIELD,
    TOO_LARGE,
    TS_INVALID,
)
from tests.ingest.protocols.plausibility import check_accepted

NOW_MS = 1_700_000_000_000

# OC-1 to OC-5: requests from the test suite of the open-source Traccar server (OsmAnd
# protocol decoder), as listed in the project's device protocol cases.
OC_1 = (
    "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0"
)
OC_2 = (
    "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0"
    "&altitude=224.0&speed=0.0"
)
OC_3 = (
    "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0"
    "&speed=0.0"
)
OC_4 = "/?id=123456&timestamp=1377177267&location=60.0,30.0"
OC_5 = "/?id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87"


def decode_url(url: str, speed_unit: str = "knots") -> RecordIn:
    return decode_parameters(parse_parameters(urlsplit(url).query), NOW_MS, speed_unit)


def ts_ms_of(record: RecordIn) -> int:
    assert isinstance(record.ts, int)
    return record.ts


def test_oc1_seconds_timestamp() -> None:
    record = decode_url(OC_1)
    assert record.device_id == "123456"
    assert record.ts == 1_377_177_267_000
    assert (record.lat, record.lon) == (60.0, 30.0)
    assert record.speed_kmh == 0.0
    assert record.heading_deg == 0.0
    assert record.altitude_m == 0.0
    assert record.attributes == {"hdop": 0.0}
    check_accepted(record, ts_ms_of(record))


def test_oc2_iso_timestamp() -> None:
    record = decode_url(OC_2)
    expected = int(datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC).timestamp() * 1000)
    assert record.ts == expected
    assert (record.lat, record.lon) == (42.06288, -88.23412)
    assert record.altitude_m == 224.0
    assert record.attributes == {"hdop": 6.0}
    check_accepted(record, ts_ms_of(record))


def test_oc3_millisecond_timestamp() -> None:
    record = decode_url(OC_3)
    assert record.ts == 1_442_068_686_579
    check_accepted(record, ts_ms_of(record))


def test_oc4_location_parameter() -> None:
    record = decode_url(OC_4)
    assert (record.lat, record.lon) == (60.0, 30.0)
    assert record.ts == 1_377_177_267_000
    check_accepted(record, ts_ms_of(record))


def test_oc5_battery_without_timestamp() -> None:
    record = decode_url(OC_5)
    assert record.device_id == "861001000719969"
    assert record.ts == NOW_MS
    assert record.altitude_m == pytest.approx(350.059479)
    assert record.attributes == {ATTRIBUTE_BATTERY_PCT: 87.0}
    assert record.battery_v is None
    check_accepted(record, NOW_MS)


def test_local_time_is_utc() -> None:
    record = decode_url("/?id=1&lat=1&lon=2&timestamp=2024-03-01%2012:30:05")
    assert record.ts == int(datetime(2024, 3, 1, 12, 30, 5, tzinfo=UTC).timestamp() * 1000)


def test_iso_with_offset() -> None:
    assert parse_timestamp_ms("2024-03-01T14:30:05+02:00") == parse_timestamp_ms(
        "2024-03-01T12:30:05Z"
    )


def test_seconds_and_ms_boundary() -> None:
    assert parse_timestamp_ms("2147483646") == 2_147_483_646_000
    assert parse_timestamp_ms("2147483648") == 2_147_483_648


@pytest.mark.parametrize("unit", ["knots", "kmh", "mps"])
def test_speed_units(unit: str) -> None:
    record = decode_url("/?id=1&lat=1&lon=2&speed=10", unit)
    assert record.speed_kmh == pytest.approx(10 * KMH_PER_UNIT[unit])


def test_knots_to_kmh() -> None:
    record = decode_url("/?id=1&lat=1&lon=2&speed=10")
    assert record.speed_kmh == pytest.approx(18.52)


def test_heading_alias_and_deviceid() -> None:
    record = decode_url("/?deviceid=abc&lat=1&lon=2&heading=270&accuracy=12.5")
    assert record.device_id == "abc"
    assert record.heading_deg == 270.0
    assert record.accuracy_m == 12.5


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("false", False)])
def test_valid_flag(value: str, expected: bool) -> None:
    record = decode_url(f"/?id=1&lat=1&lon=2&valid={value}")
    assert record.valid is expected


def test_attribute_types() -> None:
    record = decode_url("/?id=1&lat=1&lon=2&charge=true&steps=12&temp=21.5&driver=anna")
    assert record.attributes == {"charge": True, "steps": 12, "temp": 21.5, "driver": "anna"}


def test_attribute_non_finite_kept_as_string() -> None:
    assert attribute_value("nan") == "nan"


def test_missing_id() -> None:
    with pytest.raises(OsmandRequestError) as caught:
        decode_url("/?lat=1&lon=2")
    assert caught.value.reason == MISSING_FIELD
    assert "id" in caught.value.detail


def test_empty_id_is_missing() -> None:
    with pytest.raises(OsmandRequestError) as caught:
        decode_url("/?id=&lat=1&lon=2")
    assert caught.value.reason == MISSING_FIELD


def test_missing_position() -> None:
    with pytest.raises(OsmandRequestError) as caught:
        decode_url("/?id=7&lat=1")
    assert caught.value.reason == MISSING_FIELD
    assert "lon" in caught.value.detail
    assert caught.value.device_id == "7"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/?id=7&lat=abc&lon=2", INVALID_TYPE),
        ("/?id=7&location=1;2", INVALID_TYPE),
        ("/?id=7&lat=1&lon=2&speed=fast", INVALID_TYPE),
        ("/?id=7&lat=1&lon=2&batt=full", INVALID_TYPE),
        ("/?id=7&lat=1&lon=2&timestamp=yesterday", TS_INVALID),
        ("/?id=7&lat=1&lon=2&timestamp=1e999", TS_INVALID),
    ],
)
def test_bad_values(url: str, reason: str) -> None:
    with pytest.raises(OsmandRequestError) as caught:
        decode_url(url)
    assert caught.value.reason == reason
    assert caught.value.device_id == "7"


def test_too_many_parameters() -> None:
    text = "&".join(f"p{i}=1" for i in range(MAX_PARAMETERS + 1))
    with pytest.raises(OsmandRequestError) as caught:
        parse_parameters(text)
    assert caught.value.reason == TOO_LARGE


# --- the JSON body of newer Traccar Client versions ------------------------------------------

JSON_BODY = {
    "device_id": "phone-1",
    "location": {
        "timestamp": "2023-11-14T22:13:20.000Z",
        "coords": {
            "latitude": 48.1,
            "longitude": 11.5,
            "speed": 10.0,
            "heading": 90.0,
            "accuracy": 5.0,
            "altitude": 520.0,
        },
        "is_moving": True,
        "odometer": 1234.5,
        "event": "motionchange",
        "battery": {"level": 0.87, "is_charging": False},
        "activity": {"type": "in_vehicle"},
    },
}


def test_json_body_fields() -> None:
    record = decode_json_body(msgspec.json.encode(JSON_BODY))
    assert record.device_id == "phone-1"
    assert record.ts == NOW_MS
    assert (record.lat, record.lon) == (48.1, 11.5)
    assert record.speed_kmh == pytest.approx(36.0)
    assert record.heading_deg == 90.0
    assert record.accuracy_m == 5.0
    assert record.altitude_m == 520.0
    check_accepted(record, NOW_MS)


def test_json_body_attributes() -> None:
    record = decode_json_body(msgspec.json.encode(JSON_BODY))
    assert record.attributes == {
        "motion": True,
        "event": "motionchange",
        "device_odometer_m": 1234.5,
        "activity": "in_vehicle",
        ATTRIBUTE_BATTERY_PCT: 87.0,
        "charging": False,
    }


def test_json_unknown_speed_left_out() -> None:
    body = msgspec.json.decode(msgspec.json.encode(JSON_BODY))
    body["location"]["coords"]["speed"] = -1
    body["location"]["coords"]["heading"] = -1
    record = decode_json_body(msgspec.json.encode(body))
    assert record.speed_kmh is None
    assert record.heading_deg is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", INVALID_JSON),
        (b'{"location": {"timestamp": "2023-11-14T22:13:20Z"}}', MISSING_FIELD),
        (b'{"device_id": "x", "location": {"timestamp": "2023-11-14T22:13:20Z"}}', MISSING_FIELD),
        (b'{"device_id": "x", "location": {"timestamp": true}}', INVALID_TYPE),
    ],
)
def test_json_body_errors(body: bytes, reason: str) -> None:
    with pytest.raises(OsmandRequestError) as caught:
        decode_json_body(body)
    assert caught.value.reason == reason


# --- fuzzing ---------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "id",
        "deviceid",
        "timestamp",
        "lat",
        "lon",
        "location",
        "speed",
        "bearing",
        "heading",
        "altitude",
        "accuracy",
        "batt",
        "valid",
        "hdop",
        "x",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=30),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01 00:00:00", "1,2", "true", "1e400"]),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=15))
def test_fuzz_parameters(params: dict[str, str]) -> None:
    """Any parameters either decode into a RecordIn or fail with a reason and a detail."""
    try:
        record = decode_parameters(params, NOW_MS, "knots")
    except OsmandRequestError as exc:
        assert exc.reason
        assert exc.detail
        return
    assert isinstance(record, RecordIn)
    assert isinstance(record.ts, int)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_query_bytes(raw: bytes) -> None:
    """Random bytes as a query string never raise anything but OsmandRequestError."""
    try:
        params = parse_parameters(raw.decode("utf-8", errors="replace"))
        decode_parameters(params, NOW_MS, "mps")
    except OsmandRequestError as exc:
        assert exc.reason


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=len(msgspec.json.encode(JSON_BODY)) - 1),
    st.binary(max_size=4),
)
def test_fuzz_json_body_mutations(position: int, insert: bytes) -> None:
    """A JSON body with bytes overwritten decodes or fails with a reason, never crashes."""
    body = bytearray(msgspec.json.encode(JSON_BODY))
    body[position : position + len(insert)] = insert
    try:
        record = decode_json_body(bytes(body))
    except OsmandRequestError as exc:
        assert exc.reason
        return
    assert isinstance(record, RecordIn)
