"""Report periods: local day bounds in UTC and other zones, and invalid periods."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fleetpulse.reports import InvalidPeriodError, parse_day, report_period


def utc_ms(year: int, month: int, day: int, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp()) * 1000


def test_utc_day_bounds() -> None:
    period = report_period(date(2026, 11, 2), date(2026, 11, 3))

    assert period.from_ms == utc_ms(2026, 11, 2)
    assert period.to_ms == utc_ms(2026, 11, 4)
    assert period.length_s == 2 * 86_400
    assert period.days() == [date(2026, 11, 2), date(2026, 11, 3)]


def test_berlin_day_offset() -> None:
    period = report_period(date(2026, 11, 2), date(2026, 11, 2), "Europe/Berlin")

    # Central European Time is UTC+1 in November.
    assert period.from_ms == utc_ms(2026, 11, 1, 23)
    assert period.to_ms == utc_ms(2026, 11, 2, 23)


def test_dst_day_23_hours() -> None:
    # Clocks in Berlin go from 02:00 to 03:00 on 2026-03-29.
    period = report_period(date(2026, 3, 29), date(2026, 3, 29), "Europe/Berlin")

    assert period.from_ms == utc_ms(2026, 3, 28, 23)
    assert period.length_s == 23 * 3_600


def test_half_hour_zone_rejected() -> None:
    with pytest.raises(InvalidPeriodError, match="whole UTC hour"):
        report_period(date(2026, 11, 2), date(2026, 11, 2), "Asia/Kolkata")


def test_unknown_zone_rejected() -> None:
    with pytest.raises(InvalidPeriodError, match="not a known time zone"):
        report_period(date(2026, 11, 2), date(2026, 11, 2), "Mars/Olympus")


def test_end_before_start_rejected() -> None:
    with pytest.raises(InvalidPeriodError, match="before from"):
        report_period(date(2026, 11, 2), date(2026, 11, 1))


def test_too_long_rejected() -> None:
    with pytest.raises(InvalidPeriodError, match="more than 366"):
        report_period(date(2025, 1, 1), date(2026, 1, 2))


def test_bad_day_rejected() -> None:
    with pytest.raises(InvalidPeriodError, match="YYYY-MM-DD"):
        parse_day("from", "yesterday")


@pytest.mark.parametrize(
    ("first", "last", "tz"),
    [
        (date(9999, 12, 31), date(9999, 12, 31), "UTC"),
        (date(9999, 12, 30), date(9999, 12, 30), "Pacific/Kiritimati"),
        (date(1, 1, 1), date(1, 1, 1), "UTC"),
    ],
)
def test_period_at_calendar_edge_is_invalid(first: date, last: date, tz: str) -> None:
    with pytest.raises(InvalidPeriodError, match="outside the calendar"):
        report_period(first, last, tz)
