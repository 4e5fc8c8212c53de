"""Placement of a paced run's timeline on the wall clock, so no record is sent early.

A run replays ``duration_s`` seconds of device time at a time factor ``speed``
(math.inf for as fast as possible). Record time t (seconds from the start) is sent no
earlier than wall time now + t / speed.
"""

from __future__ import annotations

import math


def timeline_start_ms(now_ms: int, duration_s: float, speed: float) -> int:
    """Return the device time (epoch ms) of second 0 of the timeline.

    With ``speed`` >= 1 the timeline ends at the wall time the run ends,
    start = now + D / f - D, so record t is stamped (D - t)(1 - 1/f) before it is sent.
    Slower than real time, the timeline starts now. As fast as possible, it ends now.
    """
    if speed < 1.0:
        return now_ms
    return now_ms - math.ceil(duration_s * 1000.0 * (1.0 - 1.0 / speed))


def wall_end_ms(now_ms: int, duration_s: float, speed: float) -> int:
    """Return when a paced run started at ``now_ms`` ends, or ``now_ms`` for max speed."""
    if math.isinf(speed):
        return now_ms
    return now_ms + math.ceil(duration_s * 1000.0 / speed)


def parse_speed(text: str) -> float:
    """Parse a time factor: a positive number, or ``max`` or ``0`` for as fast as possible."""
    if text.strip().lower() in ("max", "0", "0.0"):
        return math.inf
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"invalid speed {text!r}: use a positive number or 'max'") from None
    if not speed > 0 or math.isnan(speed):
        raise ValueError(f"invalid speed {text!r}: use a positive number or 'max'")
    return speed
