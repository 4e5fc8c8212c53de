"""One live stream client: its filter and the bounded buffers between hub and socket.

The hub adds to a session from the event loop without awaiting anything; the client's
sender task takes from it every ``interval_s``. The views dict keeps only the newest
view per vehicle, which is both the coalescing and the memory bound. The event deque is
bounded by ``max_buffered_events``: one more event marks the session overflowed, and
the route closes it with code 1013 so the client resumes from the store.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from fleetpulse.live.filters import LiveFilter
from fleetpulse.model.vehicle import VehicleView

# WebSocket close codes (RFC 6455 section 7.4.1 and the IANA registry).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """A stored event ready to send: its id, what filters need, and its JSON bytes.

    ``is_update`` marks a later copy of an event already sent under the same id (an
    episode that ended), which resume deduplication must not drop.
    """

    id: int
    device_id: str
    type: str
    is_update: bool
    payload: bytes


class LiveSession:
    """The state of one connected client, owned by the hub and read by its route."""

    def __init__(
        self, live_filter: LiveFilter, interval_s: float, max_buffered_events: int, client: str
    ) -> None:
        self.filter = live_filter
        self.interval_s = interval_s
        self.client = client
        self.views: dict[str, VehicleView] = {}
        self.events: deque[LiveEvent] = deque()
        # Events up to this id were sent by resume or stored before the connection.
        # The buffer sends only later ids, and updates of any id.
        self.sent_through_id = 0
        self.skipped_vehicle_frames = 0
        self.close_code: int | None = None
        self.close_reason = ""
        # Set when the hub wants the session closed: see close_code and close_reason.
        self.stopped = asyncio.Event()
        self._max_buffered_events = max_buffered_events

    def offer_view(self, view: VehicleView) -> None:
        """Keep a vehicle's newest view for the next frame if it matches the filter."""
        if self.filter.matches_view(view):
            self.views[view.device_id] = view

    def offer_event(self, event: LiveEvent) -> None:
        """Buffer an event if it matches the filter; past the bound, ask for a close."""
        if self.close_code is not None:
            return
        if not self.filter.matches_event(event.device_id, event.type):
            return
        if len(self.events) >= self._max_buffered_events:
            self.request_close(
                CLOSE_TRY_AGAIN_LATER,
                f"more than {self._max_buffered_events} events waiting; "
                "reconnect with after_event_id",
            )
            return
        self.events.append(event)

    def set_filter(self, live_filter: LiveFilter) -> None:
        """Replace the filter and drop buffered items the new one excludes."""
        self.filter = live_filter
        self.views = {
            key: view for key, view in self.views.items() if live_filter.matches_view(view)
        }
        self.events = deque(
            event for event in self.events if live_filter.matches_event(event.device_id, event.type)
        )

    def take_views(self) -> list[VehicleView]:
        """Return the views buffered since the last call and start a new buffer."""
        views = self.views
        self.views = {}
        return list(views.values())

    def take_events(self, limit: int) -> list[LiveEvent]:
        """Remove up to ``limit`` buffered events, oldest first, without those sent already."""
        taken: list[LiveEvent] = []
        events = self.events
        while events and len(taken) < limit:
            event = events.popleft()
            if event.id > self.sent_through_id or event.is_update:
                taken.append(event)
        return taken

    def request_close(self, code: int, reason: str) -> None:
        """Ask the route to close the connection with ``code``; the first request wins."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        # The buffers are no longer sent, so free them now.
        self.views = {}
        self.events.clear()
        self.stopped.set()
