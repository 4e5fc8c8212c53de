"""Offline: a vehicle sent nothing for ``process.offline_after_s``, by the server clock.

A periodic sweep checks ``received_at_ms`` against the wall clock, because a silent
vehicle sends no record that could trigger a check. The event's ``ts_ms`` is the moment
the vehicle became offline (its last receipt plus ``offline_after_s``), so each offline
period has one identity. The next record clears the period.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import OFFLINE_EVENT, SEVERITY_WARNING
from fleetpulse.process.detectors.base import MS_PER_S, NO_EVENTS


class OfflineState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Whether the vehicle is in a reported offline period, and since when (server time)."""

    offline: bool = False
    since_ms: int | None = None


ONLINE = OfflineState()


def detect_offline(
    state: OfflineState,
    device_id: str,
    last_ts_ms: int | None,
    last_received_at_ms: int,
    now_ms: int,
    settings: Settings,
) -> tuple[OfflineState, tuple[Event, ...]]:
    """Emit one offline event when a vehicle's last receipt is ``offline_after_s`` old."""
    if state.offline:
        return state, NO_EVENTS
    offline_after_ms = int(settings.process.offline_after_s * MS_PER_S)
    since_ms = last_received_at_ms + offline_after_ms
    if now_ms < since_ms:
        return state, NO_EVENTS

    event = Event(
        device_id=device_id,
        ts_ms=since_ms,
        type=OFFLINE_EVENT,
        severity=SEVERITY_WARNING,
        details={
            "last_received_at_ms": last_received_at_ms,
            "last_ts_ms": last_ts_ms,
            "offline_after_s": settings.process.offline_after_s,
        },
    )
    return OfflineState(offline=True, since_ms=since_ms), (event,)
