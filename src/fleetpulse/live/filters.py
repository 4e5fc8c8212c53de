"""Filters of a live stream client: which vehicles and events it receives.

A filter comes from the query string of ``GET /v1/live`` or from a ``subscribe``
message. Device ids apply to vehicles and events, the bounding box to a vehicle's
``lat``/``lon``, and event types to events only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

from fleetpulse.errors import FleetpulseError
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import EVENT_TYPES

# Bounds the work of every fan-out per client; a fleet larger than this is watched
# without a device filter or with a bounding box.
MAX_FILTER_DEVICES = 10_000

# The coalescing interval a client may ask for, in seconds. Below 0.1 s a browser
# redraws more often than it can show; above 60 s the stream is no longer live.
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 60.0


class LiveRequestError(FleetpulseError):
    """A live stream parameter or message is invalid; the message names it and the fix."""


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """A WGS 84 box in degrees; it cannot cross the 180° meridian."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lat: float, lon: float) -> bool:
        """Return whether a position is inside the box, edges included."""
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon


@dataclass(frozen=True, slots=True)
class LiveFilter:
    """The vehicles and events one client receives. None in a field means no restriction."""

    device_ids: frozenset[str] | None = None
    bbox: BoundingBox | None = None
    types: frozenset[str] | None = None

    def matches_view(self, view: VehicleView) -> bool:
        """Return whether a vehicle's view passes the device and bounding box filters.

        A vehicle without a position never passes a bounding box.
        """
        if self.device_ids is not None and view.device_id not in self.device_ids:
            return False
        if self.bbox is None:
            return True
        if view.lat is None or view.lon is None:
            return False
        return self.bbox.contains(view.lat, view.lon)

    def matches_event(self, device_id: str, event_type: str) -> bool:
        """Return whether an event passes the device and type filters."""
        if self.device_ids is not None and device_id not in self.device_ids:
            return False
        return self.types is None or event_type in self.types


class SubscribeMessage(msgspec.Struct, forbid_unknown_fields=True):
    """A client's ``{"type": "subscribe", ...}`` message; a missing key means no filter."""

    type: Literal["subscribe"]
    device_id: list[str] | None = None
    bbox: list[float] | None = None
    types: list[str] | None = None


_subscribe_decoder = msgspec.json.Decoder(SubscribeMessage)


def parse_subscribe(text: str) -> LiveFilter:
    """Decode a subscribe message into the filter that replaces the client's current one.

    Raises LiveRequestError naming the bad field.
    """
    try:
        message = _subscribe_decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise LiveRequestError(
            f"invalid message: {exc}; send "
            '{"type": "subscribe", "device_id": [...], "bbox": [...], "types": [...]}'
        ) from exc
    return LiveFilter(
        device_ids=_device_ids(message.device_id),
        bbox=None if message.bbox is None else _bbox(message.bbox),
        types=_types(message.types),
    )


def parse_query_filter(query: Mapping[str, str]) -> LiveFilter:
    """Build the filter of ``device_id``, ``bbox`` and ``types`` in a query string.

    Each is a comma-separated list; an absent or empty parameter means no filter.
    Raises LiveRequestError naming the bad parameter.
    """
    device_param = query.get("device_id", "")
    bbox_param = query.get("bbox", "")
    types_param = query.get("types", "")
    return LiveFilter(
        device_ids=_device_ids(_split(device_param)) if device_param else None,
        bbox=_bbox(_bbox_numbers(bbox_param)) if bbox_param else None,
        types=_types(_split(types_param)) if types_param else None,
    )


def parse_interval_s(query: Mapping[str, str], default_s: float) -> float:
    """Return the ``interval_s`` parameter in seconds, or ``default_s`` when absent."""
    raw = query.get("interval_s")
    if raw is None or raw == "":
        return default_s
    try:
        interval_s = float(raw)
    except ValueError:
        interval_s = math.nan
    if not MIN_INTERVAL_S <= interval_s <= MAX_INTERVAL_S:
        raise LiveRequestError(
            f"interval_s={raw!r} must be a number of seconds from {MIN_INTERVAL_S} "
            f"to {MAX_INTERVAL_S}"
        )
    return interval_s


def parse_after_event_id(query: Mapping[str, str]) -> int | None:
    """Return the ``after_event_id`` parameter, or None when the client does not resume."""
    raw = query.get("after_event_id")
    if raw is None or raw == "":
        return None
    # Event ids are signed 64-bit integers in every store backend.
    if not raw.isascii() or not raw.isdigit() or int(raw) > 2**63 - 1:
        raise LiveRequestError(
            f"after_event_id={raw!r} must be a whole number from 0 to 2^63-1: the id of "
            "the last event the client received"
        )
    return int(raw)


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",")]


def _device_ids(ids: list[str] | None) -> frozenset[str] | None:
    if ids is None:
        return None
    if any(not device_id for device_id in ids):
        raise LiveRequestError("device_id contains an empty id; list ids separated by commas")
    if len(ids) > MAX_FILTER_DEVICES:
        raise LiveRequestError(
            f"device_id lists {len(ids)} ids, more than {MAX_FILTER_DEVICES}; "
            "use a bounding box or no device filter"
        )
    return frozenset(ids)


def _bbox_numbers(raw: str) -> list[float]:
    try:
        return [float(part) for part in raw.split(",")]
    except ValueError as exc:
        raise LiveRequestError(
            f"bbox={raw!r} is not four numbers; give min_lon,min_lat,max_lon,max_lat in degrees"
        ) from exc


def _bbox(numbers: list[float]) -> BoundingBox:
    if len(numbers) != 4 or not all(math.isfinite(number) for number in numbers):
        raise LiveRequestError(
            f"bbox {numbers} is not four finite numbers; give "
            "min_lon,min_lat,max_lon,max_lat in degrees"
        )
    min_lon, min_lat, max_lon, max_lat = numbers
    if not (-180.0 <= min_lon <= max_lon <= 180.0 and -90.0 <= min_lat <= max_lat <= 90.0):
        raise LiveRequestError(
            f"bbox {numbers} is out of order or range: longitudes from -180 to 180 and "
            "latitudes from -90 to 90, each minimum <= its maximum (a box cannot cross "
            "the 180° meridian)"
        )
    return BoundingBox(min_lon, min_lat, max_lon, max_lat)


def _types(types: list[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    unknown = [event_type for event_type in types if event_type not in EVENT_TYPES]
    if unknown:
        raise LiveRequestError(
            f"types contains {', '.join(repr(t) for t in unknown)}, not event types; "
            f"use some of {', '.join(EVENT_TYPES)}"
        )
    return frozenset(types)
