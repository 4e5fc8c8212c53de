"""JSON shapes of the API answers, built from the model structs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from fleetpulse.model.event import Trip
from fleetpulse.model.record import EnrichedRecord
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.store.base import StoredDeadLetter, StoredEvent

encoder = msgspec.json.Encoder()


def iso_ms(ts_ms: int | None) -> str | None:
    """Format epoch milliseconds as RFC 3339 UTC with milliseconds."""
    if ts_ms is None:
        return None
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def vehicle_json(view: VehicleView) -> dict[str, Any]:
    """Render a vehicle's latest state."""
    body: dict[str, Any] = msgspec.to_builtins(view)
    body["last_ts"] = iso_ms(view.last_ts_ms)
    return body


def position_json(item: EnrichedRecord) -> dict[str, Any]:
    """Render one stored record with what processing added to it."""
    body: dict[str, Any] = msgspec.structs.asdict(item.record)
    body["ts"] = iso_ms(item.record.ts_ms)
    body["reported_speed_kmh"] = body.pop("speed_kmh")
    body["speed_kmh"] = item.speed_kmh
    body["distance_m"] = item.distance_m
    body["motion"] = item.motion
    body["status"] = item.status
    body["reasons"] = item.reasons
    body["flags"] = item.flags
    return body


def event_json(stored: StoredEvent) -> dict[str, Any]:
    """Render an event with its store id."""
    event = stored.event
    return {
        "id": stored.id,
        "device_id": event.device_id,
        "type": event.type,
        "severity": event.severity,
        "ts_ms": event.ts_ms,
        "ts": iso_ms(event.ts_ms),
        "details": event.details,
    }


def trip_json(trip: Trip) -> dict[str, Any]:
    """Render a trip; ``end_ts`` is null while it is still going on."""
    body: dict[str, Any] = msgspec.structs.asdict(trip)
    body["start_ts"] = iso_ms(trip.start_ts_ms)
    body["end_ts"] = iso_ms(trip.end_ts_ms)
    body["open"] = trip.end_ts_ms is None
    return body


def dead_letter_json(stored: StoredDeadLetter) -> dict[str, Any]:
    """Render a dead letter with its store id."""
    body: dict[str, Any] = msgspec.structs.asdict(stored.letter)
    body["id"] = stored.id
    body["received_at"] = iso_ms(stored.letter.received_at_ms)
    return body
