"""The per-record working object that the enrichment steps fill in and the detectors read."""

from __future__ import annotations

import msgspec

from fleetpulse.model.record import EnrichedRecord, Record


class Sample(msgspec.Struct, gc=False):
    """One new record of a vehicle, with what the enrichment steps derived from its history.

    The steps in ``process/chain.py`` write these fields and the detectors only read
    them. The store keeps ``enriched``, and the other fields live for one record only.
    """

    record: Record
    enriched: EnrichedRecord
    # Seconds since the vehicle's previous processed record, or None for its first record.
    gap_s: float | None = None
    # Last known ignition: this record's value, else the newest earlier one.
    ignition: bool | None = None
    # A GPS fix that positions the vehicle: has_fix and not flagged as a GPS jump.
    fix: bool = False
    moving: bool = False
    # Device time when the vehicle stopped, or None while it moves.
    stopped_at_ms: int | None = None
    # Distance and implied speed from the previous fix, or 0.0 and None without one.
    hop_m: float = 0.0
    implied_speed_kmh: float | None = None
    # Last odometer reading that passed the glitch check, in metres.
    odometer_m: float | None = None
