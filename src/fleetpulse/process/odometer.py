"""Enrichment step: odometer glitch filter.

Trackers read the odometer from the vehicle bus, and a bus read that fails often comes
through as 0, or as a stale or garbled value. A reading of 0, a drop, or a rise faster
than the vehicle can drive is flagged ``odometer_glitch`` and ignored: the vehicle keeps
its last good value. A run of consistent readings below it is taken as a genuine reset
(an exchanged instrument cluster, for example).
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.vocabulary import FLAG_ODOMETER_GLITCH
from fleetpulse.process.sample import Sample

MS_PER_S = 1000.0
KMH_TO_MPS = 1 / 3.6

# Devices that count whole kilometres step by 1000 m at once, faster than any speed.
ODOMETER_STEP_SLACK_M = 1000.0

# Consistent lower readings in a row that are taken as an odometer reset, not a glitch.
ODOMETER_RESET_READINGS = 10


class OdometerState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The last good odometer reading and a candidate reset. Append new fields at the end."""

    good_m: float | None = None
    good_ts_ms: int | None = None
    # Last rejected non-zero reading and how many consistent rejected readings led to it.
    suspect_m: float | None = None
    suspect_count: int = 0


def check_odometer(state: OdometerState, sample: Sample, settings: Settings) -> OdometerState:
    """Flag an implausible odometer reading and return the state with the last good one."""
    record = sample.record
    reading_m = record.odometer_m
    if reading_m is None:
        sample.odometer_m = state.good_m
        return state

    if state.good_m is None or state.good_ts_ms is None:
        sample.odometer_m = reading_m
        return OdometerState(good_m=reading_m, good_ts_ms=record.ts_ms)

    elapsed_s = max(0.0, (record.ts_ms - state.good_ts_ms) / MS_PER_S)
    max_rise_m = (
        settings.detectors.gps_jump_speed_kmh * KMH_TO_MPS * elapsed_s + ODOMETER_STEP_SLACK_M
    )
    plausible = reading_m > 0.0 and state.good_m <= reading_m <= state.good_m + max_rise_m
    if plausible:
        sample.odometer_m = reading_m
        return OdometerState(good_m=reading_m, good_ts_ms=record.ts_ms)

    return _reject(state, sample, reading_m)


def _reject(state: OdometerState, sample: Sample, reading_m: float) -> OdometerState:
    # Zero is what a failed bus read looks like, so it never counts towards a reset.
    if reading_m == 0.0:
        sample.enriched.flags.append(FLAG_ODOMETER_GLITCH)
        sample.odometer_m = state.good_m
        return state

    consistent = state.suspect_m is not None and reading_m >= state.suspect_m
    suspect_count = state.suspect_count + 1 if consistent else 1
    if suspect_count >= ODOMETER_RESET_READINGS:
        sample.odometer_m = reading_m
        return OdometerState(good_m=reading_m, good_ts_ms=sample.record.ts_ms)

    sample.enriched.flags.append(FLAG_ODOMETER_GLITCH)
    sample.odometer_m = state.good_m
    return msgspec.structs.replace(state, suspect_m=reading_m, suspect_count=suspect_count)
