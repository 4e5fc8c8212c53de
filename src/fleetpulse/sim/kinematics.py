"""Longitudinal kinematics: how fast a vehicle may go in the next time step.

All values in metres, seconds and m/s. The rates keep ordinary driving clear of the
server's harsh-event thresholds (3.0 m/s2 accelerating, 3.5 m/s2 braking by default),
so only injected episodes cross them.
"""

from __future__ import annotations

import math

# Braking the planner aims for when slowing for a turn, a light or the destination.
PLAN_BRAKE_MPS2 = 2.0
# Ordinary braking never exceeds this. The planner's margin over PLAN_BRAKE_MPS2 absorbs
# the error of whole time steps.
MAX_BRAKE_MPS2 = 3.0
# Deceleration when easing off to a lower limit with nothing ahead to stop for.
COAST_MPS2 = 1.0
# Engine power fades with speed: the accelerating rate falls linearly to this share of its
# standstill value at FADE_SPEED_MS and stays there.
MIN_ACCEL_SHARE = 0.35
FADE_SPEED_MS = 50.0


def speed_to_meet(speed_ms: float, distance_m: float, target_ms: float, dt_s: float) -> float:
    """Return the highest speed after ``dt_s`` from which braking at PLAN_BRAKE_MPS2 still
    brings the vehicle down to ``target_ms`` within ``distance_m``.

    This is Gipps' safe-speed bound: after the step the vehicle has covered the mean of
    the two speeds times ``dt_s``, and v'^2 <= target^2 + 2 b (d - (v + v') dt / 2).
    For a target above zero the bound never drops below the target itself.
    """
    b = PLAN_BRAKE_MPS2
    c = target_ms * target_ms + 2 * b * distance_m - b * speed_ms * dt_s
    bound = 0.0 if c <= 0 else (-b * dt_s + math.sqrt(b * b * dt_s * dt_s + 4 * c)) / 2
    return max(bound, target_ms)


def drive_accel_mps2(standstill_accel_mps2: float, speed_ms: float) -> float:
    """Return the accelerating rate a driver uses at ``speed_ms``."""
    share = max(MIN_ACCEL_SHARE, 1.0 - speed_ms / FADE_SPEED_MS)
    return standstill_accel_mps2 * share


def next_speed(
    speed_ms: float,
    limit_ms: float,
    ahead_bound_ms: float,
    standstill_accel_mps2: float,
    dt_s: float,
) -> float:
    """Return the speed after one step of ordinary driving.

    ``ahead_bound_ms`` is the lowest ``speed_to_meet`` over the caps ahead (math.inf when
    none is in reach). Braking for them is limited to MAX_BRAKE_MPS2, and easing off to
    a lower segment limit uses COAST_MPS2.
    """
    if ahead_bound_ms < speed_ms:
        return max(ahead_bound_ms, speed_ms - MAX_BRAKE_MPS2 * dt_s, 0.0)
    if speed_ms > limit_ms:
        return max(limit_ms, speed_ms - COAST_MPS2 * dt_s)
    accelerated = speed_ms + drive_accel_mps2(standstill_accel_mps2, speed_ms) * dt_s
    return min(accelerated, limit_ms, ahead_bound_ms)
