"""Bad records a faulty device might send, each with the reject reason the server must give.

Every kind breaks exactly one rule, so the expected reason is unambiguous. Reasons are
the codes of ``fleetpulse.model.vocabulary``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from fleetpulse.model import vocabulary
from fleetpulse.sim.wire import DeviceRecord

# One day past the expected end of the run: beyond any clock-skew allowance of the server.
FUTURE_MARGIN_MS = 86_400_000

Breaker = Callable[[dict[str, Any], random.Random, int], str]


def _lat_out_of_range(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["lat"] = rng.choice((91.5, -95.0, 123.4))
    return vocabulary.OUT_OF_RANGE


def _speed_out_of_range(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["speed_kmh"] = rng.choice((-5.0, 512.0, 999.9))
    return vocabulary.OUT_OF_RANGE


def _missing_lat(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    del record["lat"]
    return vocabulary.MISSING_FIELD


def _missing_ts(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    del record["ts"]
    return vocabulary.MISSING_FIELD


def _nan_string(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["speed_kmh"] = rng.choice(("NaN", "Infinity", "-Infinity"))
    return vocabulary.NOT_FINITE


def _ts_in_future(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["ts"] = future_ms
    return vocabulary.TS_IN_FUTURE


def _ts_in_seconds(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    # A classic device bug: epoch seconds where milliseconds belong, read as January 1970.
    record["ts"] = _ts_ms(record) // 1000
    return vocabulary.TS_TOO_OLD


def _ts_without_offset(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    moment = datetime.fromtimestamp(_ts_ms(record) / 1000, UTC)
    record["ts"] = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return vocabulary.TS_NO_TIMEZONE


def _ts_unparseable(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["ts"] = rng.choice(("yesterday", "2024-13-45T25:61:00Z", "00:00"))
    return vocabulary.TS_INVALID


def _unknown_field(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["speed"] = record.get("speed_kmh", 0.0)
    return vocabulary.UNKNOWN_FIELD


def _lat_as_string(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["lat"] = str(record["lat"])
    return vocabulary.INVALID_TYPE


def _empty_device_id(record: dict[str, Any], rng: random.Random, future_ms: int) -> str:
    record["device_id"] = ""
    return vocabulary.INVALID_DEVICE_ID


def _ts_ms(record: dict[str, Any]) -> int:
    ts = record["ts"]
    if isinstance(ts, int):
        return ts
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


BREAKERS: dict[str, Breaker] = {
    "lat_out_of_range": _lat_out_of_range,
    "speed_out_of_range": _speed_out_of_range,
    "missing_lat": _missing_lat,
    "missing_ts": _missing_ts,
    "nan_string": _nan_string,
    "ts_in_future": _ts_in_future,
    "ts_in_seconds": _ts_in_seconds,
    "ts_without_offset": _ts_without_offset,
    "ts_unparseable": _ts_unparseable,
    "unknown_field": _unknown_field,
    "lat_as_string": _lat_as_string,
    "empty_device_id": _empty_device_id,
}


def make_bad_record(
    good: DeviceRecord, rng: random.Random, future_ms: int
) -> tuple[dict[str, Any], str, str]:
    """Return a broken copy of ``good``, the kind of breakage and the expected reason.

    ``future_ms`` is a time sure to be in the future when the record is sent.
    """
    record: dict[str, Any] = msgspec.to_builtins(good)
    kind = rng.choice(tuple(BREAKERS))
    reason = BREAKERS[kind](record, rng, future_ms)
    return record, kind, reason
