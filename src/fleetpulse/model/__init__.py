"""The record model: what a telemetry record, an event, a trip and a vehicle state are."""

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord, Record

__all__ = ["DeadLetter", "EnrichedRecord", "Event", "Record", "Trip"]
