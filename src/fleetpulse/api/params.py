"""Parsing of query parameters: times, limits and ids, with errors that name the accepted form."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from fleetpulse.api.errors import ApiError

DAY_MS = 86_400_000
# Store backends keep times and ids as signed 64-bit integers.
INT64_MAX = 2**63 - 1


def parse_time_ms(request: Request, name: str, default: int) -> int:
    """Read a time parameter given as epoch milliseconds or RFC 3339 with an offset."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.isascii() and raw.lstrip("-").isdigit():
        value = int(raw)
        if not -INT64_MAX <= value <= INT64_MAX:
            raise ApiError(
                400,
                "invalid_parameter",
                f"{name}={raw} is out of range; epoch milliseconds fit in 64 bits",
            )
        return value
    try:
        parsed = datetime.fromisoformat(raw.replace(" ", "+") if "T" in raw else raw)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name}={raw!r} is not a time; give epoch milliseconds or RFC 3339 with an "
            "offset, for example 2026-01-31T08:00:00Z",
        )
    return int(parsed.timestamp() * 1000)


def parse_limit(request: Request, default: int, maximum: int) -> int:
    """Read ``limit``: a whole number from 1 to ``maximum``."""
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise ApiError(
            400, "invalid_parameter", f"limit={raw!r} must be a whole number from 1 to {maximum}"
        )
    return int(raw)


def parse_int(request: Request, name: str, default: int) -> int:
    """Read a non-negative whole number parameter."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) > INT64_MAX:
        raise ApiError(
            400, "invalid_parameter", f"{name}={raw!r} must be a whole number from 0 to {INT64_MAX}"
        )
    return int(raw)


def check_range(from_ms: int, to_ms: int) -> None:
    """Reject a time range whose end is not after its start."""
    if to_ms <= from_ms:
        raise ApiError(
            400, "invalid_parameter", f"to ({to_ms}) must be later than from ({from_ms})"
        )
