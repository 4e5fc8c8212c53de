"""Where the simulated timeline sits: no record is stamped later than the moment it is sent."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetpulse.sim.clock import parse_speed, timeline_start_ms, wall_end_ms

NOW_MS = 1_700_000_000_000


@given(
    duration_s=st.floats(1.0, 7 * 86_400.0),
    speed=st.floats(1.0, 10_000.0) | st.just(math.inf) | st.floats(0.01, 0.99),
    fraction=st.floats(0.0, 1.0),
)
def test_timeline_never_ahead_of_send(duration_s: float, speed: float, fraction: float) -> None:
    start_ms = timeline_start_ms(NOW_MS, duration_s, speed)
    offset_s = duration_s * fraction
    stamped_ms = start_ms + offset_s * 1000
    # The pacer hands a record over no earlier than offset / speed after the start.
    earliest_send_ms = NOW_MS + (0.0 if math.isinf(speed) else offset_s / speed * 1000)

    assert stamped_ms <= earliest_send_ms + 1e-3


@pytest.mark.parametrize("speed", [1.0, 2.0, 60.0, 1000.0])
def test_timeline_ends_when_run_ends(speed: float) -> None:
    start_ms = timeline_start_ms(NOW_MS, 3600.0, speed)

    assert start_ms + 3_600_000 == wall_end_ms(NOW_MS, 3600.0, speed)


def test_timeline_max_speed_ends_now() -> None:
    assert timeline_start_ms(NOW_MS, 600.0, math.inf) == NOW_MS - 600_000
    assert wall_end_ms(NOW_MS, 600.0, math.inf) == NOW_MS


def test_timeline_slow_motion_starts_now() -> None:
    assert timeline_start_ms(NOW_MS, 600.0, 0.5) == NOW_MS


@pytest.mark.parametrize(("text", "expected"), [("1", 1.0), ("60", 60.0), ("2.5", 2.5)])
def test_parse_speed_number(text: str, expected: float) -> None:
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["max", "MAX", "0", "0.0"])
def test_parse_speed_max(text: str) -> None:
    assert parse_speed(text) == math.inf


@pytest.mark.parametrize("text", ["-1", "fast", "nan", ""])
def test_parse_speed_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="positive number or 'max'"):
        parse_speed(text)
