"""``GET /v1/live``: the WebSocket stream of vehicle views and events.

The route checks the query and registers a session with the hub, which buffers from
that moment. It sends ``hello`` and replays the stored events after ``after_event_id``.
Then it runs two tasks until one ends: a sender that flushes the session every
``interval_s``, and a receiver that applies ``subscribe`` messages and sees the client
leave. docs/api.md describes the frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from fleetpulse.api.render import encoder, vehicle_json
from fleetpulse.live.filters import (
    LiveRequestError,
    parse_after_event_id,
    parse_interval_s,
    parse_query_filter,
    parse_subscribe,
)
from fleetpulse.live.hub import LiveCapacityError, LiveHub
from fleetpulse.live.session import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    LiveEvent,
    LiveSession,
)
from fleetpulse.model.vocabulary import ERROR_UNAVAILABLE

log = logging.getLogger(__name__)

# Events per frame: bounds the size of one frame, and so what one send puts into the
# socket buffer of a slow client, to about 300 KB.
EVENTS_PER_FRAME = 1_000

# Events read per store query while replaying after after_event_id.
RESUME_PAGE_EVENTS = 1_000

# after_event_id=0 replays from the first stored event, which the store can only read
# newest first: one query of at most this many events.
RESUME_FROM_START_MAX = 10_000

# A close frame waits behind the data a slow client has not read. After this long the
# route gives up on it and the connection is dropped without one.
CLOSE_TIMEOUT_S = 5.0

# RFC 6455 allows at most 123 bytes of reason in a close frame.
CLOSE_REASON_MAX_BYTES = 123


def live_routes(hub: LiveHub | None) -> list[BaseRoute]:
    """Build the ``/v1/live`` WebSocket route served from ``hub``.

    Without a hub the route closes every connection with 1011 and code ``unavailable``.
    """
    if hub is None:
        return [WebSocketRoute("/v1/live", _unavailable)]

    async def live(websocket: WebSocket) -> None:
        client = _address(websocket)
        query = websocket.query_params
        try:
            live_filter = parse_query_filter(query)
            interval_s = parse_interval_s(query, hub.settings.interval_s)
            after_event_id = parse_after_event_id(query)
        except LiveRequestError as exc:
            log.info("live client rejected: client=%s error=%s", client, exc)
            await _reject(websocket, CLOSE_POLICY_VIOLATION, "invalid_parameter", str(exc))
            return
        try:
            session = hub.register(live_filter, interval_s, client)
        except LiveCapacityError as exc:
            log.warning("live client rejected: client=%s error=%s", client, exc)
            await _reject(websocket, CLOSE_TRY_AGAIN_LATER, "too_many_clients", str(exc))
            return

        log.info(
            "live client connected: client=%s device_ids=%s bbox=%s types=%s interval_s=%s "
            "after_event_id=%s",
            client,
            _count(live_filter.device_ids),
            live_filter.bbox,
            _count(live_filter.types),
            interval_s,
            after_event_id,
        )
        try:
            outcome = await _serve(websocket, hub, session, after_event_id)
        finally:
            hub.unregister(session)
        log.info("live client disconnected: client=%s reason=%s", client, outcome)

    return [WebSocketRoute("/v1/live", live)]


async def _unavailable(websocket: WebSocket) -> None:
    log.info("live client rejected: client=%s error=no live hub", _address(websocket))
    await _reject(
        websocket,
        CLOSE_INTERNAL_ERROR,
        ERROR_UNAVAILABLE,
        "this process has no live stream; connect to the server that runs the processor",
    )


async def _serve(
    websocket: WebSocket, hub: LiveHub, session: LiveSession, after_event_id: int | None
) -> str:
    """Serve one accepted session until it ends; return why it ended, for the log."""
    try:
        await websocket.accept()
        hello = {
            "type": "hello",
            "interval_s": session.interval_s,
            "last_event_id": session.sent_through_id,
        }
        await websocket.send_text(encoder.encode(hello).decode())
        if after_event_id is not None:
            await _resume(websocket, hub, session, after_event_id)
        return await _stream(websocket, session)
    except WebSocketDisconnect as exc:
        return f"client closed the connection (code {exc.code})"
    except LiveRequestError as exc:
        await _close(websocket, CLOSE_POLICY_VIOLATION, "invalid_parameter", str(exc))
        return f"invalid request: {exc}"


async def _stream(websocket: WebSocket, session: LiveSession) -> str:
    sender = asyncio.create_task(_send_loop(websocket, session), name="live-sender")
    receiver = asyncio.create_task(_receive_loop(websocket, session), name="live-receiver")
    stopped = asyncio.create_task(session.stopped.wait(), name="live-stopped")
    tasks = {sender, receiver, stopped}
    try:
        # Wakes when the client closes or sends an invalid message (receiver), a send
        # fails (sender), or the hub requests a close on overflow or shutdown (stopped).
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)

    if stopped.done() and not stopped.cancelled():
        code = session.close_code or CLOSE_TRY_AGAIN_LATER
        await _close(websocket, code, "closed_by_server", session.close_reason)
        return f"closed by the server with {code}: {session.close_reason}"
    for task in (receiver, sender):
        if task.done() and not task.cancelled():
            task.result()  # raises the error that ended the task, if any
    return "client closed the connection"


async def _resume(
    websocket: WebSocket, hub: LiveHub, session: LiveSession, after_event_id: int
) -> None:
    """Send the stored events after ``after_event_id``, oldest first, in pages."""
    live_filter = session.filter
    sent = 0
    if after_event_id == 0:
        page = await hub.stored_events(live_filter, 0, RESUME_FROM_START_MAX)
        if page.more:
            raise LiveRequestError(
                f"after_event_id=0 would replay more than {RESUME_FROM_START_MAX} events; "
                "pass the id of the last event received, or connect without after_event_id "
                "and read older events with GET /v1/events"
            )
        await _send_events(websocket, page.events)
        sent = len(page.events)
        last_id = page.last_read_id
    else:
        last_id = after_event_id
        while True:
            page = await hub.stored_events(live_filter, last_id, RESUME_PAGE_EVENTS)
            await _send_events(websocket, page.events)
            sent += len(page.events)
            last_id = page.last_read_id
            if not page.more or session.stopped.is_set():
                break
    session.sent_through_id = max(session.sent_through_id, last_id)
    log.info(
        "live client resumed: client=%s after_event_id=%s events=%s through_id=%s",
        session.client,
        after_event_id,
        sent,
        last_id,
    )


async def _send_loop(websocket: WebSocket, session: LiveSession) -> None:
    loop = asyncio.get_running_loop()
    interval_s = session.interval_s
    next_tick = loop.time() + interval_s
    while True:
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
        await _flush(websocket, session)
        next_tick += interval_s
        now = loop.time()
        if now > next_tick:
            # The flush outlasted at least one interval because the client reads slowly:
            # those vehicle frames are skipped, and the next flush reports them.
            missed = int((now - next_tick) // interval_s) + 1
            session.skipped_vehicle_frames += missed
            next_tick += missed * interval_s


async def _flush(websocket: WebSocket, session: LiveSession) -> None:
    if session.skipped_vehicle_frames:
        lagging = {"type": "lagging", "skipped_vehicle_frames": session.skipped_vehicle_frames}
        session.skipped_vehicle_frames = 0
        await websocket.send_text(encoder.encode(lagging).decode())

    # Only the events waiting now: under a steady flow the loop still reaches the views.
    waiting = len(session.events)
    while waiting > 0:
        events = session.take_events(min(waiting, EVENTS_PER_FRAME))
        waiting -= EVENTS_PER_FRAME
        await _send_events(websocket, events)

    views = session.take_views()
    if views:
        frame = {"type": "vehicles", "vehicles": [vehicle_json(view) for view in views]}
        await websocket.send_text(encoder.encode(frame).decode())


async def _send_events(websocket: WebSocket, events: list[LiveEvent]) -> None:
    for start in range(0, len(events), EVENTS_PER_FRAME):
        chunk = events[start : start + EVENTS_PER_FRAME]
        frame = b'{"type":"events","events":[' + b",".join(e.payload for e in chunk) + b"]}"
        await websocket.send_text(frame.decode())


async def _receive_loop(websocket: WebSocket, session: LiveSession) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            raise LiveRequestError("binary frames are not accepted; send JSON text frames")
        new_filter = parse_subscribe(text)
        session.set_filter(new_filter)
        log.info(
            "live client subscribed: client=%s device_ids=%s bbox=%s types=%s",
            session.client,
            _count(new_filter.device_ids),
            new_filter.bbox,
            _count(new_filter.types),
        )


async def _reject(websocket: WebSocket, code: int, error_code: str, message: str) -> None:
    """Accept only to tell the client why, because a browser cannot read a 400 body."""
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.accept()
        await _close(websocket, code, error_code, message)


async def _close(websocket: WebSocket, code: int, error_code: str, message: str) -> None:
    """Send an error frame and close with ``code``, unless the client does not read."""
    frame = {"type": "error", "error": {"code": error_code, "message": message}}
    reason = message.encode()[:CLOSE_REASON_MAX_BYTES].decode(errors="ignore")
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await websocket.send_text(encoder.encode(frame).decode())
            await websocket.close(code, reason)
    except (WebSocketDisconnect, TimeoutError, RuntimeError) as exc:
        # RuntimeError: Starlette's state check once the client has closed first.
        log.info("live close not delivered: code=%s error=%s", code, str(exc) or "timed out")


def _address(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client is not None else "-"


def _count(values: frozenset[str] | None) -> str:
    return "all" if values is None else str(len(values))
