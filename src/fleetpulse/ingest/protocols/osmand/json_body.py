"""Decode the JSON body that Traccar Client 9 and later POST instead of OsmAnd parameters.

The body (Content-Type ``application/json``) has the shape::

    {"device_id": "123456",
     "location": {"timestamp": "2024-05-01T10:00:00.000Z",
                  "coords": {"latitude": 60.0, "longitude": 30.0, "speed": 5.2,
                             "heading": 90.0, "accuracy": 4.0, "altitude": 20.0},
                  "is_moving": true, "odometer": 1234.5, "event": "motionchange",
                  "battery": {"level": 0.87, "is_charging": false},
                  "activity": {"type": "in_vehicle"}, "extras": {...}}}

Speeds are m/s whatever ``speed_unit`` is set to, because the client's location library reports
m/s. A negative speed, heading or battery level means unknown, and is left out.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from fleetpulse.ingest.protocols.osmand.decoding import (
    ATTRIBUTE_BATTERY_PCT,
    KMH_PER_UNIT,
    OsmandRequestError,
    parse_timestamp_ms,
)
from fleetpulse.model.record import RecordIn
from fleetpulse.model.vocabulary import INVALID_JSON, INVALID_TYPE, MISSING_FIELD

ATTRIBUTE_MOTION: Final = "motion"
ATTRIBUTE_EVENT: Final = "event"
ATTRIBUTE_ACTIVITY: Final = "activity"
ATTRIBUTE_CHARGING: Final = "charging"
ATTRIBUTE_MOCK: Final = "mock"
# The phone's own distance count: kept apart from odometer_m, which is the vehicle's.
ATTRIBUTE_DEVICE_ODOMETER_M: Final = "device_odometer_m"
ATTRIBUTE_ALARM: Final = "alarm"


class Coords(msgspec.Struct):
    """The fix: degrees, m/s, metres. Unknown values are negative or absent."""

    latitude: float
    longitude: float
    speed: float | None = None
    heading: float | None = None
    accuracy: float | None = None
    altitude: float | None = None


class Battery(msgspec.Struct):
    """The phone's battery: ``level`` from 0 to 1, or negative when unknown."""

    level: float | None = None
    is_charging: bool | None = None


class Activity(msgspec.Struct):
    type: str | None = None


class Location(msgspec.Struct):
    timestamp: str | int
    coords: Coords | None = None
    is_moving: bool | None = None
    odometer: float | None = None
    event: str | None = None
    mock: bool | None = None
    battery: Battery | None = None
    activity: Activity | None = None
    alarm: str | None = None
    extras: dict[str, Any] | None = None


class LocationBody(msgspec.Struct):
    device_id: str | int
    location: Location


_DECODER: Final = msgspec.json.Decoder(LocationBody)


def decode_json_body(body: bytes) -> RecordIn:
    """Build the RecordIn of one Traccar Client JSON body.

    Raises OsmandRequestError for a body that is not JSON (``invalid_json``), lacks the
    device id, the timestamp or the coordinates (``missing_field``), or has a value of the
    wrong type (``invalid_type``).
    """
    try:
        message = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        reason = MISSING_FIELD if "missing required field" in str(exc) else INVALID_TYPE
        detail = f"the JSON body is not a Traccar Client location: {exc}"
        raise OsmandRequestError(reason, detail) from exc
    except msgspec.DecodeError as exc:
        raise OsmandRequestError(INVALID_JSON, f"the body is not valid JSON: {exc}") from exc

    device_id = str(message.device_id)
    location = message.location
    coords = location.coords
    if coords is None:
        raise OsmandRequestError(
            MISSING_FIELD,
            "the location has no coords; fleetpulse stores only positions with coordinates",
            device_id,
        )
    try:
        ts_ms = _timestamp_ms(location.timestamp)
    except OsmandRequestError as exc:
        exc.device_id = device_id
        raise

    return RecordIn(
        device_id=device_id,
        ts=ts_ms,
        lat=coords.latitude,
        lon=coords.longitude,
        speed_kmh=_known(coords.speed, KMH_PER_UNIT["mps"]),
        heading_deg=_known(coords.heading),
        altitude_m=coords.altitude,
        accuracy_m=_known(coords.accuracy),
        attributes=_attributes(location) or None,
    )


def _timestamp_ms(timestamp: str | int) -> int:
    if isinstance(timestamp, int):
        return parse_timestamp_ms(str(timestamp))
    return parse_timestamp_ms(timestamp)


def _known(value: float | None, scale: float = 1.0) -> float | None:
    if value is None or value < 0:
        return None
    return value * scale


def _attributes(location: Location) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if location.is_moving is not None:
        attributes[ATTRIBUTE_MOTION] = location.is_moving
    if location.event is not None:
        attributes[ATTRIBUTE_EVENT] = location.event
    if location.odometer is not None:
        attributes[ATTRIBUTE_DEVICE_ODOMETER_M] = location.odometer
    if location.mock is not None:
        attributes[ATTRIBUTE_MOCK] = location.mock
    if location.activity is not None and location.activity.type is not None:
        attributes[ATTRIBUTE_ACTIVITY] = location.activity.type
    battery = location.battery
    if battery is not None:
        if battery.level is not None and battery.level >= 0:
            attributes[ATTRIBUTE_BATTERY_PCT] = round(battery.level * 100, 1)
        if battery.is_charging is not None:
            attributes[ATTRIBUTE_CHARGING] = battery.is_charging
    alarm = location.alarm
    if alarm is None and location.extras is not None:
        extra_alarm = location.extras.get("alarm")
        alarm = extra_alarm if isinstance(extra_alarm, str) else None
    if alarm is not None:
        attributes[ATTRIBUTE_ALARM] = alarm
    return attributes
