"""Longitudinal kinematics: braking in time for caps, within the ordinary bounds."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from fleetpulse.sim.kinematics import (
    MAX_BRAKE_MPS2,
    PLAN_BRAKE_MPS2,
    drive_accel_mps2,
    next_speed,
    speed_to_meet,
)


@given(
    speed=st.floats(0.0, 45.0),
    distance=st.floats(0.0, 2000.0),
    target=st.floats(0.0, 40.0),
    dt=st.sampled_from([0.1, 0.5, 1.0]),
)
def test_speed_to_meet_never_below_target(
    speed: float, distance: float, target: float, dt: float
) -> None:
    assert speed_to_meet(speed, distance, target, dt) >= target


@given(distance=st.floats(1.0, 5000.0), target=st.floats(0.0, 30.0))
def test_speed_to_meet_allows_planned_braking(distance: float, target: float) -> None:
    bound = speed_to_meet(target, distance, target, 1.0)
    # From the bound, braking at the planned rate reaches the target within the distance.
    assert bound**2 - target**2 <= 2 * PLAN_BRAKE_MPS2 * distance + 1e-6


def test_next_speed_stops_at_line_gently() -> None:
    speed, position, line, dt = 50 / 3.6, 0.0, 300.0, 1.0
    for _ in range(200):
        bound = speed_to_meet(speed, line - position, 0.0, dt)
        new_speed = next_speed(speed, 50 / 3.6, bound, 2.0, dt)
        assert speed - new_speed <= MAX_BRAKE_MPS2 * dt + 1e-9
        position += (speed + new_speed) / 2 * dt
        speed = new_speed
        if speed == 0.0:
            break

    assert speed == 0.0
    assert line - 3.0 <= position <= line + 0.5


def test_next_speed_accelerates_to_limit() -> None:
    speed = 0.0
    for _ in range(60):
        speed = next_speed(speed, 50 / 3.6, math.inf, 2.0, 1.0)

    assert speed == 50 / 3.6


def test_next_speed_coasts_down_to_lower_limit() -> None:
    speed = next_speed(130 / 3.6, 100 / 3.6, math.inf, 2.0, 1.0)

    assert 100 / 3.6 < speed < 130 / 3.6
    assert (130 / 3.6 - speed) <= 1.0 + 1e-9


def test_drive_accel_fades_with_speed() -> None:
    assert drive_accel_mps2(2.0, 0.0) == 2.0
    assert drive_accel_mps2(2.0, 30.0) < drive_accel_mps2(2.0, 10.0)
    assert drive_accel_mps2(2.0, 100.0) > 0.0
