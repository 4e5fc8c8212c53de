"""The point every trace reader yields, and the time parsing they share."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

import msgspec

from fleetpulse.sim.errors import TraceError

log = logging.getLogger(__name__)

# Numbers below this are epoch seconds, above it epoch milliseconds: 1e11 s is the
# year 5138, while 1e11 ms is March 1973.
EPOCH_MS_ABOVE = 100_000_000_000


class TracePoint(msgspec.Struct, frozen=True, gc=False):
    """One recorded fix. Optional values are None when the trace does not have them."""

    ts_ms: int
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: float | None = None
    altitude_m: float | None = None
    engine_rpm: float | None = None


def parse_time_ms(value: object, where: str) -> int:
    """Parse an ISO 8601 / RFC 3339 time or an epoch number into epoch milliseconds.

    Strings may use ``Z``, ``+hh:mm`` or ``+hhmm`` and a space instead of ``T``. A time
    without an offset is taken as UTC. Numbers below EPOCH_MS_ABOVE are epoch seconds.
    ``where`` names the file and position for the error message.
    """
    if isinstance(value, bool):
        raise TraceError(f"{where}: invalid time {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise TraceError(f"{where}: invalid time {value!r}")
        return round(value if value >= EPOCH_MS_ABOVE else value * 1000)
    if not isinstance(value, str):
        raise TraceError(f"{where}: invalid time {value!r}: expected text or a number")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return parse_time_ms(float(text), where)
        except ValueError:
            raise TraceError(
                f"{where}: invalid time {value!r}: expected ISO 8601 such as "
                "2020-03-05T13:22:06Z, or epoch seconds or milliseconds"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def parse_float(value: object, where: str, name: str) -> float | None:
    """Return ``value`` as a finite float, None for a missing or empty value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise TraceError(f"{where}: invalid {name} {value!r}: expected a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TraceError(f"{where}: invalid {name} {value!r}: expected a number") from None
    if not math.isfinite(number):
        raise TraceError(f"{where}: invalid {name} {value!r}: expected a finite number")
    return number


def require_float(value: object, where: str, name: str) -> float:
    """Return ``value`` as a finite float, or raise TraceError when it is missing."""
    number = parse_float(value, where, name)
    if number is None:
        raise TraceError(f"{where}: missing {name}")
    return number


def in_time_order(points: list[TracePoint], source: str) -> list[TracePoint]:
    """Return the points sorted by time (stable), warning if the file was out of order."""
    ordered = all(a.ts_ms <= b.ts_ms for a, b in zip(points, points[1:], strict=False))
    if ordered:
        return points
    log.warning("%s: points are not in time order, sorting them by time", source)
    return sorted(points, key=lambda point: point.ts_ms)
