"""The live hub: fans each stored batch out to the connected live stream clients.

The processor calls ``publish`` after every successful store write. Vehicle views go to
the sessions at once. Events need the ids the store gave them, which the batch does not
carry, so ``publish`` queues them and wakes the pump task. The pump reads the new events
from the store after the last id it handed out, and reads back the events the batch
updated, because an episode that ended keeps its id. It then hands them to the sessions
in id order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from fleetpulse.api.render import encoder, event_json
from fleetpulse.config import LiveSettings
from fleetpulse.errors import FleetpulseError
from fleetpulse.live.filters import LiveFilter
from fleetpulse.live.session import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER, LiveEvent, LiveSession
from fleetpulse.model.event import Event
from fleetpulse.store.base import ProcessedBatch, Store, StoredEvent

log = logging.getLogger(__name__)

# A time range that contains every event, for store queries that select by id only.
ALL_FROM_MS = -(2**62)
ALL_TO_MS = 2**62

# Events read per store query while the pump or a resume pages by id.
EVENT_PAGE = 1_000

# Events that wait for the pump while the store cannot be read. Beyond it every client
# is closed with 1013 and resumes from the store, because an event dropped here would
# be missing from every stream.
MAX_PENDING_EVENTS = 100_000

# Wait before the pump reads again after a failed store read.
PUMP_RETRY_S = 1.0

# How long close() waits for the routes to close their connections.
SESSION_CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class EventPage:
    """Stored events of one resume query, and where the next query starts."""

    events: list[LiveEvent]
    last_read_id: int
    more: bool


class LiveCapacityError(FleetpulseError):
    """The hub has ``[live] max_clients`` clients; a later attempt may succeed."""

    retriable = True


class LiveHub:
    """Connected live sessions and the pump that gives events their store ids.

    ``start`` must run after the store has started and before the processor does, so
    the pump has read the newest stored event id before new ones arrive.
    """

    def __init__(self, settings: LiveSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._sessions: set[LiveSession] = set()
        self._finished: dict[LiveSession, asyncio.Event] = {}
        self._pending: list[Event] = []
        self._pending_ready = asyncio.Event()
        self._last_event_id = 0
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def last_event_id(self) -> int:
        """The largest event id handed to the sessions, or stored before the start."""
        return self._last_event_id

    @property
    def session_count(self) -> int:
        """The number of connected clients."""
        return len(self._sessions)

    async def start(self) -> None:
        """Read the newest stored event id and start the pump task."""
        newest = await self.store.events(None, None, ALL_FROM_MS, ALL_TO_MS, 1)
        self._last_event_id = newest[0].id if newest else 0
        self._pump_task = asyncio.create_task(self._pump(), name="fleetpulse-live-pump")
        log.info(
            "live hub started: last_event_id=%s max_clients=%s",
            self._last_event_id,
            self.settings.max_clients,
        )

    async def close(self) -> None:
        """Close every session with 1001, wait for their routes, then stop the pump."""
        self._closed = True
        waits = list(self._finished.values())
        for session in list(self._sessions):
            session.request_close(CLOSE_GOING_AWAY, "server shutting down")
        if waits:
            await asyncio.wait(
                [asyncio.create_task(wait.wait()) for wait in waits],
                timeout=SESSION_CLOSE_TIMEOUT_S,
            )
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        log.info("live hub stopped: sessions_left=%s", len(self._sessions))

    def register(self, live_filter: LiveFilter, interval_s: float, client: str) -> LiveSession:
        """Add a session that buffers from now on.

        Raises LiveCapacityError when ``[live] max_clients`` sessions are connected or
        the hub is closing.
        """
        if self._closed:
            raise LiveCapacityError("the server is shutting down; reconnect later")
        if len(self._sessions) >= self.settings.max_clients:
            raise LiveCapacityError(
                f"{len(self._sessions)} live clients are connected, the maximum of "
                "[live] max_clients; reconnect later"
            )
        session = LiveSession(live_filter, interval_s, self.settings.max_buffered_events, client)
        session.sent_through_id = self._last_event_id
        self._sessions.add(session)
        self._finished[session] = asyncio.Event()
        return session

    def unregister(self, session: LiveSession) -> None:
        """Remove a session whose connection has ended."""
        self._sessions.discard(session)
        finished = self._finished.pop(session, None)
        if finished is not None:
            finished.set()

    def publish(self, batch: ProcessedBatch) -> None:
        """Fan a stored batch out: views now, events once the pump has their ids.

        The processor's callback: it never awaits, and its work is O(batch size) per
        session.
        """
        if self._closed:
            return
        if self._sessions:
            for snapshot in batch.vehicles:
                view = snapshot.view
                for session in self._sessions:
                    session.offer_view(view)
        # Events are read even without clients, so that last_event_id stays current
        # for the hello frame of the next client.
        if batch.events:
            self._pending.extend(batch.events)
            self._pending_ready.set()
            if len(self._pending) > MAX_PENDING_EVENTS:
                self._drop_pending()

    async def stored_events(self, live_filter: LiveFilter, after_id: int, limit: int) -> EventPage:
        """Read up to ``limit`` stored events with an id above ``after_id``, oldest first.

        With ``after_id`` 0 the page contains the newest ``limit`` events, oldest first,
        because the store pages oldest first only after an id. Events not matching
        ``live_filter`` are left out, so a page may hold fewer events while more follow:
        continue from ``last_read_id`` while ``more`` is true.
        """
        device_id = _single(live_filter.device_ids)
        event_type = _single(live_filter.types)
        rows = await self.store.events(
            device_id, event_type, ALL_FROM_MS, ALL_TO_MS, limit, after_id
        )
        if after_id == 0:
            rows.reverse()
        events = [
            _live_event(row, is_update=False)
            for row in rows
            if live_filter.matches_event(row.event.device_id, row.event.type)
        ]
        last_read_id = rows[-1].id if rows else after_id
        return EventPage(events, last_read_id, more=len(rows) == limit)

    async def _pump(self) -> None:
        while True:
            await self._pending_ready.wait()
            self._pending_ready.clear()
            pending = self._pending
            self._pending = []
            try:
                events = await self._resolve(pending)
            except FleetpulseError as exc:
                log.warning(
                    "live event read failed, retrying: events=%s after_id=%s retry_in_s=%s "
                    "error=%s",
                    len(pending),
                    self._last_event_id,
                    PUMP_RETRY_S,
                    exc,
                )
                self._pending = pending + self._pending
                self._pending_ready.set()
                await asyncio.sleep(PUMP_RETRY_S)
                continue
            self._fan_out(events)

    async def _resolve(self, pending: list[Event]) -> list[LiveEvent]:
        new_rows = await self._read_new(len(pending))
        seen = {(row.event.device_id, row.event.type, row.event.ts_ms) for row in new_rows}
        resolved = [_live_event(row, is_update=False) for row in new_rows]
        if not self._sessions:
            return resolved
        for event in pending:
            key = (event.device_id, event.type, event.ts_ms)
            if key in seen:
                continue
            seen.add(key)
            # Not new, so the write updated a stored event: read it back for its id and
            # for the details the store kept (it never turns final details ongoing again).
            found = await self.store.events(
                event.device_id, event.type, event.ts_ms, event.ts_ms + 1, 1
            )
            if found:
                resolved.append(_live_event(found[0], is_update=True))
        return resolved

    async def _read_new(self, expected: int) -> list[StoredEvent]:
        if self._last_event_id == 0:
            # The store had no event when the hub started, so every stored event is new.
            # Several processors may have stored events whose messages have not arrived
            # yet, so the read takes at least a page, not only the ``expected`` rows of
            # this message. (after_id 0 cannot page oldest first.)
            # NOTE: more than a page stored before this first read would be handed out
            # only in part: the older ones reach clients as updates, not as new events.
            limit = max(expected, EVENT_PAGE)
            rows = await self.store.events(None, None, ALL_FROM_MS, ALL_TO_MS, limit)
            rows.reverse()
            return rows
        rows = []
        after_id = self._last_event_id
        while True:
            page = await self.store.events(None, None, ALL_FROM_MS, ALL_TO_MS, EVENT_PAGE, after_id)
            rows.extend(page)
            if len(page) < EVENT_PAGE:
                return rows
            after_id = page[-1].id

    def _fan_out(self, events: list[LiveEvent]) -> None:
        for event in events:
            if not event.is_update:
                self._last_event_id = max(self._last_event_id, event.id)
            for session in self._sessions:
                session.offer_event(event)
        if events:
            log.debug(
                "live events sent to sessions: events=%s sessions=%s last_event_id=%s",
                len(events),
                len(self._sessions),
                self._last_event_id,
            )

    def _drop_pending(self) -> None:
        log.error(
            "live event backlog over %s while the store cannot be read: dropping it and "
            "closing clients=%s with 1013 so that they resume from the store",
            MAX_PENDING_EVENTS,
            len(self._sessions),
        )
        self._pending = []
        for session in self._sessions:
            session.request_close(
                CLOSE_TRY_AGAIN_LATER, "live events are delayed; reconnect with after_event_id"
            )


def _single(values: frozenset[str] | None) -> str | None:
    if values is not None and len(values) == 1:
        return next(iter(values))
    return None


def _live_event(row: StoredEvent, is_update: bool) -> LiveEvent:
    event = row.event
    return LiveEvent(
        id=row.id,
        device_id=event.device_id,
        type=event.type,
        is_update=is_update,
        payload=encoder.encode(event_json(row)),
    )
