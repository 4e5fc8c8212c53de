"""Tests of RFC 3339 parsing and formatting for record timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetpulse.model.timestamps import TimestampError, format_ms, parse_rfc3339_ms
from fleetpulse.model.vocabulary import TS_INVALID, TS_NO_TIMEZONE

NOON_UTC_MS = int(datetime(2026, 5, 9, 12, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("2026-05-09T12:00:00Z", NOON_UTC_MS),
        ("2026-05-09T12:00:00.123Z", NOON_UTC_MS + 123),
        ("2026-05-09T12:00:00.123456789Z", NOON_UTC_MS + 123),
        ("2026-05-09T14:00:00+02:00", NOON_UTC_MS),
        ("2026-05-09T07:30:00-0430", NOON_UTC_MS),
        ("2026-05-09 12:00:00Z", NOON_UTC_MS),
        ("2026-05-09t12:00:00z", NOON_UTC_MS),
        ("2026-05-09T12:00:00.5+00:00", NOON_UTC_MS + 500),
    ],
)
def test_parse_accepted_forms(text: str, expected_ms: int) -> None:
    assert parse_rfc3339_ms(text) == expected_ms


@pytest.mark.parametrize("text", ["2026-05-09T12:00:00", "2026-05-09 12:00:00.250"])
def test_parse_without_offset(text: str) -> None:
    with pytest.raises(TimestampError) as caught:
        parse_rfc3339_ms(text)

    assert caught.value.reason == TS_NO_TIMEZONE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "now",
        "2026-05-09",
        "20260509T120000Z",
        "2026-05-09T12:00Z",
        "2026-05-09T12:00:00+02",
        "2026-05-09T25:00:00Z",
        "2026-13-09T12:00:00Z",
        "2026-05-09T12:00:60Z",
        "2026-05-09T12:00:00+24:00",
        "2026-05-09T12:00:00Zjunk",
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(TimestampError) as caught:
        parse_rfc3339_ms(text)

    assert caught.value.reason == TS_INVALID


def test_parse_long_value_shortened_in_message() -> None:
    with pytest.raises(TimestampError) as caught:
        parse_rfc3339_ms("x" * 10_000)

    assert len(str(caught.value)) < 200


def test_format_round_trip() -> None:
    text = format_ms(NOON_UTC_MS + 7)

    assert text == "2026-05-09T12:00:00.007Z"
    assert parse_rfc3339_ms(text) == NOON_UTC_MS + 7


def test_format_out_of_datetime_range() -> None:
    assert format_ms(10**20) == f"{10**20} ms"
