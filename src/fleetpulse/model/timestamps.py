"""Timestamps: RFC 3339 strings to epoch milliseconds and back.

A record's ``ts`` is an integer of epoch milliseconds or an RFC 3339 string with an
explicit offset: ``2026-05-09T07:35:25.123Z``, ``...+02:00``, or ``...+0200``. A space
may replace the ``T``. Fractional seconds may have any number of digits and are
truncated to whole milliseconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fleetpulse.model.vocabulary import TS_INVALID, TS_NO_TIMEZONE

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# Date and time without fraction or offset, "2026-05-09T07:35:25", is the shortest form
# that can be reported as missing only its offset.
_MIN_LENGTH = 19
_EXPECTED_FORM = "YYYY-MM-DDTHH:MM:SS[.fff] followed by Z, +hh:mm or +hhmm"
# Longer ts strings are cut in messages so that a reject detail stays one readable line.
_QUOTE_MAX_CHARS = 40


class TimestampError(ValueError):
    """A ``ts`` string that is not an RFC 3339 timestamp with an offset.

    ``reason`` is ``ts_no_timezone`` or ``ts_invalid``. The message names the value and
    the expected form.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def now_ms() -> int:
    """Return the current wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def parse_rfc3339_ms(text: str) -> int:
    """Parse an RFC 3339 timestamp with an offset into epoch milliseconds (floored).

    Raises TimestampError with reason ``ts_no_timezone`` when the offset is missing and
    ``ts_invalid`` for anything else that is not of the form ``_EXPECTED_FORM``.
    """
    if not _has_rfc3339_shape(text):
        raise TimestampError(
            TS_INVALID, f"ts {_quote(text)} is not a timestamp of the form {_EXPECTED_FORM}"
        )

    moment = _parse_iso(text)
    if moment.tzinfo is None:
        raise TimestampError(
            TS_NO_TIMEZONE,
            f"ts {_quote(text)} has no UTC offset; append Z for UTC or the offset such as +02:00",
        )
    if not _has_rfc3339_offset(text):
        raise TimestampError(
            TS_INVALID, f"ts {_quote(text)} has an offset that is not Z, +hh:mm or +hhmm"
        )
    return (moment - _EPOCH) // _ONE_MS


def format_ms(ts_ms: int) -> str:
    """Format epoch milliseconds as RFC 3339 UTC with milliseconds, for messages.

    Values outside the years 1-9999 are returned as ``<n> ms`` because datetime cannot
    represent them.
    """
    try:
        moment = _EPOCH + ts_ms * _ONE_MS
    except OverflowError:
        return f"{ts_ms} ms"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _has_rfc3339_shape(text: str) -> bool:
    # Checking the separators by position takes 0.16 us against 0.66 us for a regex
    # (timeit, CPython 3.11). fromisoformat then checks the digits and ranges.
    return (
        len(text) >= _MIN_LENGTH
        and text[4] == "-"
        and text[7] == "-"
        and text[10] in "Tt "
        and text[13] == ":"
        and text[16] == ":"
    )


def _parse_iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    # Python 3.11's fromisoformat rejects the lowercase "t" and "z" that RFC 3339 allows.
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError as exc:
        raise TimestampError(
            TS_INVALID, f"ts {_quote(text)} is not a valid timestamp: {exc}"
        ) from exc


def _has_rfc3339_offset(text: str) -> bool:
    if text[-1] in "Zz":
        return True
    if text[-6] in "+-" and text[-3] == ":":
        return True
    # +hhmm: the sign is fifth from the end, after a digit of the seconds or the fraction.
    return text[-5] in "+-" and text[-6].isdigit()


def _quote(text: str) -> str:
    if len(text) > _QUOTE_MAX_CHARS:
        return repr(text[:_QUOTE_MAX_CHARS]) + f"... ({len(text)} characters)"
    return repr(text)
