"""Parsing of query parameters: times, limits and ids, with errors that say the accepted form."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request

from fleetpulse.api.errors import ApiError

DAY_MS = 86_400_000


def parse_time_ms(request: Request, name: str, default: int) -> int:
    """Read a time parameter given as epoch milliseconds or RFC 3339 with an offset."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lstrip("-").isdigit():
        return int(raw)
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
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(
            400, "invalid_parameter", f"limit={raw!r} must be a whole number from 1 to {maximum}"
        )
    return int(raw)


def parse_int(request: Request, name: str, default: int) -> int:
    """Read a non-negative whole number parameter."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise ApiError(400, "invalid_parameter", f"{name}={raw!r} must be a whole number >= 0")
    return int(raw)


def check_range(from_ms: int, to_ms: int) -> None:
    """Reject a time range whose end is not after its start."""
    if to_ms <= from_ms:
        raise ApiError(
            400, "invalid_parameter", f"to ({to_ms}) must be later than from ({from_ms})"
        )
