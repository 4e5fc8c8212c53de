"""The period of a report: whole local days of one time zone, and their UTC bounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleetpulse.reports.errors import InvalidPeriodError
from fleetpulse.store.base import ACTIVITY_HOUR_MS

# Bounds the work of one request: a year of daily rows per vehicle.
MAX_PERIOD_DAYS = 366
DEFAULT_TZ = "UTC"


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """The local days ``first_day`` to ``last_day`` (both included) in ``tz``.

    ``day_starts_ms`` contains the epoch milliseconds at which each day starts, plus the
    end of the last day, so it has one item more than there are days. A day of a
    daylight saving change is 23 or 25 hours long.
    """

    first_day: date
    last_day: date
    tz: str
    day_starts_ms: tuple[int, ...]

    @property
    def from_ms(self) -> int:
        """Start of the first day, epoch milliseconds."""
        return self.day_starts_ms[0]

    @property
    def to_ms(self) -> int:
        """End of the last day (exclusive), epoch milliseconds."""
        return self.day_starts_ms[-1]

    @property
    def length_s(self) -> float:
        """Length of the period in seconds."""
        return (self.to_ms - self.from_ms) / 1000

    def days(self) -> list[date]:
        """Return the local days of the period, in order."""
        count = len(self.day_starts_ms) - 1
        return [self.first_day + timedelta(days=offset) for offset in range(count)]


def parse_day(name: str, raw: str) -> date:
    """Parse a day given as YYYY-MM-DD; ``name`` is the parameter for the error message."""
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidPeriodError(
            f"{name}={raw!r} is not a day; give it as YYYY-MM-DD, for example 2026-11-30"
        ) from None


def report_period(first_day: date, last_day: date, tz: str = DEFAULT_TZ) -> ReportPeriod:
    """Build the period of the local days ``first_day`` to ``last_day`` in zone ``tz``.

    Raises InvalidPeriodError for an unknown zone, a last day before the first, or more
    than MAX_PERIOD_DAYS days. It also raises it for a day that does not start on a
    whole UTC hour in that zone (in Asia/Kolkata, at +05:30, for example), because the
    stored aggregates are hourly.
    """
    zone = _zone(tz)
    if last_day < first_day:
        raise InvalidPeriodError(
            f"to={last_day.isoformat()} is before from={first_day.isoformat()}; "
            "give the last day of the report on or after the first"
        )
    count = (last_day - first_day).days + 1
    if count > MAX_PERIOD_DAYS:
        raise InvalidPeriodError(
            f"the period has {count} days, more than {MAX_PERIOD_DAYS}; split it"
        )

    if last_day >= date.max - timedelta(days=1) or first_day <= date.min + timedelta(days=1):
        # The period ends at the start of the day after last_day, which must exist, and
        # a zone's offset may move a day's start across the first or last date.
        raise InvalidPeriodError(
            f"from={first_day.isoformat()} to={last_day.isoformat()} is outside the "
            "calendar this server can count in; give days between 0001-01-03 and 9999-12-29"
        )
    starts = tuple(
        _day_start_ms(first_day + timedelta(days=offset), zone) for offset in range(count + 1)
    )
    for offset, start_ms in enumerate(starts):
        if start_ms % ACTIVITY_HOUR_MS:
            day = first_day + timedelta(days=offset)
            raise InvalidPeriodError(
                f"in tz={tz!r}, {day.isoformat()} does not start on a whole UTC hour; "
                "reports need a zone whose offset is a whole number of hours, such as UTC"
            )
    return ReportPeriod(first_day, last_day, tz, starts)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPeriodError(
            f"tz={tz!r} is not a known time zone; give an IANA name such as UTC or Europe/Berlin"
        ) from None


def _day_start_ms(day: date, zone: ZoneInfo) -> int:
    # Where a daylight saving change skips midnight, zoneinfo reads the skipped 00:00
    # with the offset before the change, which is the moment of the change itself.
    start = datetime.combine(day, time(0), tzinfo=zone)
    return int(start.timestamp()) * 1000
