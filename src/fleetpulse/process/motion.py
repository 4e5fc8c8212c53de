"""Enrichment step: GPS fix checks, distance, speed used and motion state.

Parked drift: a parked receiver wanders by metres, and every wander looks like a short
hop. While stationary the step keeps an anchor and counts a fix as moving only when it
is fast enough and outside ``stationary_radius_m`` of the anchor. Distance is added only
while moving, from the last counted point, so jitter at a stop adds nothing and the
first hop of a departure (measured from the anchor) loses nothing.

GPS jump: a fix that implies more than ``gps_jump_speed_kmh`` over more than
``gps_jump_min_distance_m`` is flagged and adds no distance, and the vehicle is
re-anchored there. A receiver that held a stale position in a tunnel then continues
from its true position. A lone outlier is flagged again on the jump back, and that
second jump also gets ``gps_jump_back`` when it lands where the vehicle could be, seen
from the fix before the first jump, within JUMP_BACK_WITHIN_S of it.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import DetectorSettings, Settings
from fleetpulse.model.vocabulary import (
    FLAG_GPS_JUMP,
    FLAG_GPS_JUMP_BACK,
    FLAG_NO_FIX,
    IDLE,
    MOVING,
    PARKED,
)
from fleetpulse.process.geo import haversine_m
from fleetpulse.process.sample import Sample

MS_PER_S = 1000.0
MPS_TO_KMH = 3.6
# An outlier lasts one fix or a few, so a device reporting every 1-30 s jumps back well
# within a minute. A later jump is taken as a new one, because the area the vehicle could
# have reached from the fix before the outlier grows with time (5 km after 60 s at the
# default gps_jump_speed_kmh). A judgment call.
JUMP_BACK_WITHIN_S = 60.0


class MotionState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The motion step's memory of a vehicle. Append new fields at the end.

    ``fix_*`` is the newest accepted fix, the base of the next hop. ``point_*`` is the
    anchor while stationary and the last counted point while moving. ``jump_*`` describes
    the newest jump not yet followed by a jump back: the fix before it (``jump_from_*``)
    and its time (``jump_ts_ms``), or None.
    """

    ignition: bool | None = None
    fix_lat: float | None = None
    fix_lon: float | None = None
    fix_ts_ms: int | None = None
    point_lat: float | None = None
    point_lon: float | None = None
    moving: bool = False
    stopped_at_ms: int | None = None
    jump_from_lat: float | None = None
    jump_from_lon: float | None = None
    jump_from_ts_ms: int | None = None
    jump_ts_ms: int | None = None


def measure_motion(state: MotionState, sample: Sample, settings: Settings) -> MotionState:
    """Fill in the sample's fix, distance, speed used and motion, and return the new state."""
    record = sample.record
    ignition = record.ignition if record.ignition is not None else state.ignition
    sample.ignition = ignition

    if not record.has_fix:
        new_state = _without_fix(state, sample, ignition)
    else:
        new_state = _with_fix(state, sample, ignition, settings)

    sample.moving = new_state.moving
    sample.stopped_at_ms = new_state.stopped_at_ms
    sample.enriched.motion = _motion_of(new_state, ignition, record.ts_ms, settings)
    return new_state


def _without_fix(state: MotionState, sample: Sample, ignition: bool | None) -> MotionState:
    # No position, so nothing moves: the vehicle keeps its motion (a car in a tunnel
    # is still driving) until the ignition goes off.
    record = sample.record
    sample.enriched.flags.append(FLAG_NO_FIX)
    sample.enriched.speed_kmh = record.speed_kmh
    moving = state.moving and ignition is not False
    stopped_at_ms = _stopped_at(state, moving, record.ts_ms)
    if moving == state.moving and ignition == state.ignition:
        return state
    return msgspec.structs.replace(
        state, ignition=ignition, moving=moving, stopped_at_ms=stopped_at_ms
    )


def _with_fix(
    state: MotionState, sample: Sample, ignition: bool | None, settings: Settings
) -> MotionState:
    record = sample.record
    enriched = sample.enriched
    thresholds = settings.detectors
    lat = record.lat
    lon = record.lon
    reported_kmh = record.speed_kmh

    implied_kmh: float | None = None
    if state.fix_lat is not None and state.fix_lon is not None and state.fix_ts_ms is not None:
        hop_m = haversine_m(state.fix_lat, state.fix_lon, lat, lon)
        elapsed_s = (record.ts_ms - state.fix_ts_ms) / MS_PER_S
        implied_kmh = hop_m / elapsed_s * MPS_TO_KMH if elapsed_s > 0.0 else None
        sample.hop_m = hop_m
        sample.implied_speed_kmh = implied_kmh

        if _is_jump(hop_m, implied_kmh, thresholds):
            return _after_jump(state, sample, ignition, thresholds)

    speed_kmh = reported_kmh if reported_kmh is not None else implied_kmh
    if reported_kmh is None and implied_kmh is not None:
        # Two fixes milliseconds apart turn metres of GPS noise into thousands of km/h.
        # A hop too short to be a jump but implying an impossible speed tells nothing
        # about the vehicle's speed.
        if implied_kmh > thresholds.gps_jump_speed_kmh:
            speed_kmh = None
    enriched.speed_kmh = speed_kmh
    sample.fix = True
    moving = _is_moving(state, sample, speed_kmh, ignition, settings)

    point_lat = state.point_lat
    point_lon = state.point_lon
    if moving:
        if state.moving:
            # While moving the last counted point is the previous fix: reuse the hop.
            enriched.distance_m = sample.hop_m
        elif point_lat is not None and point_lon is not None:
            enriched.distance_m = haversine_m(point_lat, point_lon, lat, lon)
        point_lat = lat
        point_lon = lon
    elif point_lat is None:
        point_lat = lat
        point_lon = lon

    return MotionState(
        ignition=ignition,
        fix_lat=lat,
        fix_lon=lon,
        fix_ts_ms=record.ts_ms,
        point_lat=point_lat,
        point_lon=point_lon,
        moving=moving,
        stopped_at_ms=_stopped_at(state, moving, record.ts_ms),
        jump_from_lat=state.jump_from_lat,
        jump_from_lon=state.jump_from_lon,
        jump_from_ts_ms=state.jump_from_ts_ms,
        jump_ts_ms=state.jump_ts_ms,
    )


def _is_jump(hop_m: float, implied_kmh: float | None, thresholds: DetectorSettings) -> bool:
    return (
        implied_kmh is not None
        and implied_kmh > thresholds.gps_jump_speed_kmh
        and hop_m > thresholds.gps_jump_min_distance_m
    )


def _after_jump(
    state: MotionState, sample: Sample, ignition: bool | None, thresholds: DetectorSettings
) -> MotionState:
    # Flag the jump, re-anchor at the new fix and keep the motion of before the jump.
    record = sample.record
    sample.enriched.flags.append(FLAG_GPS_JUMP)
    sample.enriched.speed_kmh = record.speed_kmh
    jump_back = _is_jump_back(state, record.lat, record.lon, record.ts_ms, thresholds)
    if jump_back:
        sample.enriched.flags.append(FLAG_GPS_JUMP_BACK)
    return MotionState(
        ignition=ignition,
        fix_lat=record.lat,
        fix_lon=record.lon,
        fix_ts_ms=record.ts_ms,
        point_lat=record.lat,
        point_lon=record.lon,
        moving=state.moving,
        stopped_at_ms=state.stopped_at_ms,
        # A jump back closes the outlier. Any other jump starts a new one, from the fix
        # before it.
        jump_from_lat=None if jump_back else state.fix_lat,
        jump_from_lon=None if jump_back else state.fix_lon,
        jump_from_ts_ms=None if jump_back else state.fix_ts_ms,
        jump_ts_ms=None if jump_back else record.ts_ms,
    )


def _is_jump_back(
    state: MotionState, lat: float, lon: float, ts_ms: int, thresholds: DetectorSettings
) -> bool:
    """Return whether a jump at ``ts_ms`` is the jump back of the newest open jump.

    It is when it comes within JUMP_BACK_WITHIN_S of that jump and lands where the vehicle
    could be by now, so that measured from the fix before that jump it is no jump.
    """
    if (
        state.jump_ts_ms is None
        or state.jump_from_lat is None
        or state.jump_from_lon is None
        or state.jump_from_ts_ms is None
    ):
        return False
    if (ts_ms - state.jump_ts_ms) / MS_PER_S > JUMP_BACK_WITHIN_S:
        return False
    from_before_m = haversine_m(state.jump_from_lat, state.jump_from_lon, lat, lon)
    elapsed_s = (ts_ms - state.jump_from_ts_ms) / MS_PER_S
    implied_kmh = from_before_m / elapsed_s * MPS_TO_KMH
    return not _is_jump(from_before_m, implied_kmh, thresholds)


def _is_moving(
    state: MotionState,
    sample: Sample,
    speed_kmh: float | None,
    ignition: bool | None,
    settings: Settings,
) -> bool:
    thresholds = settings.detectors
    fast_enough = speed_kmh is not None and speed_kmh >= thresholds.moving_speed_kmh
    if state.moving:
        return fast_enough

    # A device that measures its own speed is trusted over the anchor test, unless the
    # ignition is known to be off.
    reported_kmh = sample.record.speed_kmh
    if (
        reported_kmh is not None
        and reported_kmh >= thresholds.moving_speed_kmh
        and ignition is not False
    ):
        return True
    if not fast_enough or state.point_lat is None or state.point_lon is None:
        return False
    record = sample.record
    from_anchor_m = haversine_m(state.point_lat, state.point_lon, record.lat, record.lon)
    return from_anchor_m > thresholds.stationary_radius_m


def _stopped_at(state: MotionState, moving: bool, ts_ms: int) -> int | None:
    if moving:
        return None
    if state.moving or state.stopped_at_ms is None:
        return ts_ms
    return state.stopped_at_ms


def _motion_of(state: MotionState, ignition: bool | None, ts_ms: int, settings: Settings) -> str:
    if state.moving:
        return MOVING
    if ignition:
        return IDLE
    if ignition is None and state.stopped_at_ms is not None:
        stationary_s = (ts_ms - state.stopped_at_ms) / MS_PER_S
        if stationary_s < settings.detectors.parked_after_s:
            return IDLE
    return PARKED
