"""Events and trips: what the processing engine derives from a vehicle's records."""

from __future__ import annotations

from typing import Any

import msgspec


class Event(msgspec.Struct, gc=False):
    """Something that happened to a vehicle at a moment.

    The identity of an event is (``device_id``, ``type``, ``ts_ms``): storing the same
    event twice keeps one copy, so a redelivered batch cannot double it.
    """

    device_id: str
    ts_ms: int
    type: str
    severity: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class Trip(msgspec.Struct, gc=False):
    """A drive from the first moving record to the stop or ignition off that ends it.

    ``end_ts_ms`` is None while the trip is still going on. Distances in metres,
    durations in seconds, speeds in km/h; the average speed is distance over duration.
    """

    device_id: str
    start_ts_ms: int
    start_lat: float
    start_lon: float
    end_ts_ms: int | None = None
    end_lat: float | None = None
    end_lon: float | None = None
    distance_m: float = 0.0
    duration_s: float = 0.0
    max_speed_kmh: float = 0.0
    avg_speed_kmh: float = 0.0
    idle_s: float = 0.0
