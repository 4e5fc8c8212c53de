"""Enrichment of a late record: one older than its vehicle's newest processed record.

A late record is stored so the history is complete, but it must not change the
vehicle's state or produce events. Replaying an old transition would report it twice
or in the wrong order, and an old fix would make geofences flap. So a late record is
enriched from its own values alone.
"""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.record import EnrichedRecord, Record
from fleetpulse.model.vocabulary import FLAG_LATE, FLAG_NO_FIX, IDLE, MOVING, PARKED
from fleetpulse.process.status import assess_late_status


def enrich_late(record: Record, settings: Settings) -> EnrichedRecord:
    """Enrich a late record without vehicle history: no distance, motion from its own speed."""
    flags = [FLAG_LATE]
    if not record.has_fix:
        flags.append(FLAG_NO_FIX)

    speed_kmh = record.speed_kmh
    if speed_kmh is not None and speed_kmh >= settings.detectors.moving_speed_kmh:
        motion = MOVING
    elif record.ignition:
        motion = IDLE
    else:
        motion = PARKED

    status, reasons = assess_late_status(record, flags, settings)
    return EnrichedRecord(
        record=record,
        distance_m=0.0,
        speed_kmh=speed_kmh,
        motion=motion,
        status=status,
        reasons=reasons,
        flags=flags,
    )
