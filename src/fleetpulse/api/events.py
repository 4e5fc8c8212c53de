"""Event endpoints: events by vehicle, type and time, and the dead-letter list."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.api.context import ApiContext
from fleetpulse.api.errors import ApiError
from fleetpulse.api.params import DAY_MS, check_range, parse_int, parse_limit, parse_time_ms
from fleetpulse.api.render import dead_letter_json, encoder, event_json
from fleetpulse.model.vocabulary import EVENT_TYPES
from fleetpulse.store.base import StoredEvent

EVENTS_DEFAULT_LIMIT = 100
EVENTS_MAX_LIMIT = 10_000
DEAD_LETTERS_DEFAULT_LIMIT = 100
DEAD_LETTERS_MAX_LIMIT = 10_000


def _next_page_query(
    found: list[StoredEvent], from_ms: int, to_ms: int, limit: int, after_id: int
) -> dict[str, str | int]:
    """Return the query of the page after ``found``, which held ``limit`` events."""
    query: dict[str, str | int] = {"from": from_ms, "limit": limit}
    if after_id:
        # Oldest first after an id: the next page starts after this page's last id.
        query["to"] = to_ms
        query["after_id"] = found[-1].id
    else:
        # NOTE: newest-first pages are cut by time. Events that share the oldest ts_ms of
        # this page with events left out are skipped; after_id paging has no such gap.
        query["to"] = found[-1].event.ts_ms
    return query


def event_routes(ctx: ApiContext) -> list[Route]:
    """Build ``/v1/events`` and ``/v1/dead-letters``."""

    async def list_events(request: Request) -> Response:
        now_ms = ctx.clock_ms()
        from_ms = parse_time_ms(request, "from", now_ms - DAY_MS)
        to_ms = parse_time_ms(request, "to", now_ms + DAY_MS)
        check_range(from_ms, to_ms)
        limit = parse_limit(request, EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT)
        after_id = parse_int(request, "after_id", 0)
        device_id = request.query_params.get("device_id") or None
        event_type = request.query_params.get("type") or None
        if event_type is not None and event_type not in EVENT_TYPES:
            raise ApiError(
                400,
                "invalid_parameter",
                f"type={event_type!r} is not an event type; use one of {', '.join(EVENT_TYPES)}",
            )
        found = await ctx.store.events(device_id, event_type, from_ms, to_ms, limit, after_id)

        body: dict[str, object] = {"count": len(found), "events": [event_json(e) for e in found]}
        body["next"] = None
        if len(found) == limit:
            query = _next_page_query(found, from_ms, to_ms, limit, after_id)
            if device_id:
                query["device_id"] = device_id
            if event_type:
                query["type"] = event_type
            body["next"] = f"{request.url.path}?{urlencode(query)}"
        return Response(encoder.encode(body), media_type="application/json")

    async def list_dead_letters(request: Request) -> Response:
        limit = parse_limit(request, DEAD_LETTERS_DEFAULT_LIMIT, DEAD_LETTERS_MAX_LIMIT)
        after_id = parse_int(request, "after_id", 0)
        found = await ctx.store.dead_letters(limit, after_id)
        body = {"count": len(found), "dead_letters": [dead_letter_json(d) for d in found]}
        return Response(encoder.encode(body), media_type="application/json")

    return [
        Route("/v1/events", list_events, methods=["GET"]),
        Route("/v1/dead-letters", list_dead_letters, methods=["GET"]),
    ]
