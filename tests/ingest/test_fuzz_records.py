"""Property tests of the real decode and validate path: every body ends accepted or rejected.

Hypothesis generates valid records, nearly valid ones (one field dropped, retyped, out of
range or malformed), arbitrary JSON values and arbitrary bytes, as JSON arrays, single
objects and NDJSON. Whatever the input, ``decode_body`` must either raise BodyError with
a known reason code or return one outcome per record, each reject with a known reason.
Any other exception is a bug.
"""

from __future__ import annotations

import json
import math
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, example, given, settings

from fleetpulse.config import Settings, load_settings
from fleetpulse.ingest.decode import BodyError, decode_body
from fleetpulse.model.validate import ValidatedBatch
from fleetpulse.model.vocabulary import REJECT_REASONS

SETTINGS: Settings = load_settings(environ={})
# A fixed receipt time, so that generated timestamps relate to it the same way in every run.
RECEIVED_AT_MS = 1_796_400_000_000
MAX_AGE_MS = int(SETTINGS.ingest.max_age_days * 86_400_000)
JSON_TYPES = ("application/json", "application/x-ndjson")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

device_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64
)
recent_ts_ms = st.integers(RECEIVED_AT_MS - MAX_AGE_MS + 60_000, RECEIVED_AT_MS)
finite = {"allow_nan": False, "allow_infinity": False}


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a record that the validator must accept."""
    record: dict[str, Any] = {
        "device_id": draw(device_ids),
        "ts": draw(recent_ts_ms),
        "lat": draw(st.floats(-90, 90, **finite)),
        "lon": draw(st.floats(-180, 180, **finite)),
    }
    optional = {
        "speed_kmh": st.floats(0, 400, **finite),
        "heading_deg": st.floats(0, 360, **finite),
        "altitude_m": st.floats(-500, 10_000, **finite),
        "accuracy_m": st.floats(0, 100_000, **finite),
        "ignition": st.booleans(),
        "engine_rpm": st.floats(0, 20_000, **finite),
        "coolant_c": st.floats(-60, 200, **finite),
        "fuel_pct": st.floats(0, 100, **finite),
        "battery_v": st.floats(0, 100, **finite),
        "odometer_m": st.floats(0, 1e10, **finite),
        "valid": st.booleans(),
        "dtc": st.lists(st.from_regex(r"[A-Z][0-9]{4}", fullmatch=True), max_size=5),
        "attributes": st.dictionaries(
            st.text(min_size=1, max_size=10), st.integers(0, 1000), max_size=5
        ),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            record[name] = draw(strategy)
    return record


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(**finite) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

FIELDS = ("device_id", "ts", "lat", "lon", "speed_kmh", "heading_deg", "altitude_m",
          "accuracy_m", "ignition", "engine_rpm", "coolant_c", "fuel_pct", "battery_v",
          "odometer_m", "dtc", "valid", "attributes")
# Values that sit at or just past an edge of what the validator accepts.
EDGE_VALUES: tuple[Any, ...] = (
    None, "", " ", "NaN", "Infinity", -0.0, 1e308, -1e308, 2**63, -(2**63), 2**64,
    "2026-12-04T08:00:00", "2026-12-04T08:00:00Z", "2026-13-40T25:61:61+00:00",
    "2026-12-04 08:00:00+01:00", "1796400000", 1796400000, RECEIVED_AT_MS + 10**9,
    "x" * 300, "\u0000", "\ud7ff", [], {}, [[[[[[1]]]]]], {"a": {"b": {"c": {"d": {"e": 1}}}}},
    True, 91.0, -181.0, 400.0001, 361, -1,
)


@st.composite
def nearly_valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a valid record with one or two fields dropped, replaced or added."""
    record = draw(valid_records())
    for _ in range(draw(st.integers(1, 2))):
        action = draw(st.sampled_from(("drop", "edge", "random", "unknown")))
        name = draw(st.sampled_from(FIELDS))
        if action == "drop":
            record.pop(name, None)
        elif action == "edge":
            record[name] = draw(st.sampled_from(EDGE_VALUES))
        elif action == "random":
            record[name] = draw(json_values)
        else:
            record[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    return record


def _check_outcome(body: bytes, content_type: str, expected_records: int | None) -> None:
    """Decode ``body`` and check that it ends in known outcomes only."""
    try:
        batch = decode_body(body, content_type, RECEIVED_AT_MS, SETTINGS)
    except BodyError as exc:
        assert exc.reason in REJECT_REASONS, exc.reason
        return
    _check_batch(batch, expected_records)


def _check_batch(batch: ValidatedBatch, expected_records: int | None) -> None:
    for reject in batch.rejects:
        assert reject.reason in REJECT_REASONS, reject.reason
        assert reject.detail, f"reject {reject.reason} at {reject.index} has no detail"
    indexes = sorted(reject.index for reject in batch.rejects)
    assert len(indexes) == len(set(indexes)), f"two rejects share an index: {indexes}"
    for record in batch.records:
        assert math.isfinite(record.lat), record
        assert -90 <= record.lat <= 90, record
        assert math.isfinite(record.lon), record
        assert -180 <= record.lon <= 180, record
        assert record.ts_ms <= RECEIVED_AT_MS + SETTINGS.ingest.max_future_skew_s * 1000
    if expected_records is not None:
        assert len(batch.records) + len(batch.rejects) == expected_records


def _ndjson(records: list[Any]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


@FUZZ
@given(st.lists(valid_records(), min_size=1, max_size=20))
def test_fuzz_valid_records_accepted(records: list[dict[str, Any]]) -> None:
    for body, content_type in ((json.dumps(records).encode(), "application/json"),
                               (_ndjson(records), "application/x-ndjson")):
        batch = decode_body(body, content_type, RECEIVED_AT_MS, SETTINGS)
        assert [r.reason for r in batch.rejects] == []
        assert [(r.device_id, r.ts_ms) for r in batch.records] == [
            (record["device_id"], record["ts"]) for record in records
        ]


@FUZZ
@given(st.lists(nearly_valid_records() | valid_records(), min_size=1, max_size=20))
def test_fuzz_nearly_valid_known_reasons(records: list[dict[str, Any]]) -> None:
    _check_outcome(json.dumps(records).encode(), "application/json", len(records))
    _check_outcome(_ndjson(records), "application/x-ndjson", len(records))


@FUZZ
@given(st.lists(nearly_valid_records() | valid_records(), min_size=1, max_size=20))
def test_fuzz_array_and_ndjson_agree(records: list[dict[str, Any]]) -> None:
    # The same records must get the same verdicts whether sent as an array or as lines.
    as_array = decode_body(json.dumps(records).encode(), "application/json", RECEIVED_AT_MS,
                           SETTINGS)
    as_lines = decode_body(_ndjson(records), "application/x-ndjson", RECEIVED_AT_MS, SETTINGS)
    assert [(r.index, r.reason) for r in as_array.rejects] == [
        (r.index, r.reason) for r in as_lines.rejects
    ]
    assert as_array.records == as_lines.records


@FUZZ
@given(nearly_valid_records())
def test_fuzz_single_object_known_reason(record: dict[str, Any]) -> None:
    _check_outcome(json.dumps(record).encode(), "application/json", 1)


@FUZZ
@given(json_values, st.sampled_from(JSON_TYPES))
def test_fuzz_any_json_known_reason(value: Any, content_type: str) -> None:
    _check_outcome(json.dumps(value).encode(), content_type, None)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(JSON_TYPES))
@example(b"[" * 100_000, "application/json")
@example(b'{"device_id":"a","ts":1,"lat":1e999,"lon":0}', "application/json")
@example(b'[{"device_id":"a"},\n', "application/json")
@example(b"\xef\xbb\xbf[]", "application/json")
@example(b"\n\n{}\n\xff\n", "application/x-ndjson")
def test_fuzz_any_bytes_known_reason(body: bytes, content_type: str) -> None:
    _check_outcome(body, content_type, None)
