"""The access rule of each route: public, ``read``, ``admin`` or ``device``.

Every route of the app has one entry in ``ROUTE_POLICY``, keyed by its path template and
method (``WEBSOCKET`` for a WebSocket route). A route missing from the table requires an
admin key, and tests/auth fails for it, so a new route needs a decision here.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Final

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

WEBSOCKET: Final = "WEBSOCKET"


class Access(Enum):
    """The credential that a request to a route must present."""

    PUBLIC = "public"
    READ = "read"
    ADMIN = "admin"
    # A device token covering the records' devices, or an admin key.
    DEVICE = "device"


# GET also serves HEAD, which Starlette adds to every GET route.
ROUTE_POLICY: Final[dict[tuple[str, str], Access]] = {
    # Probes and the API description carry no fleet data.
    ("/healthz", "GET"): Access.PUBLIC,
    ("/openapi.json", "GET"): Access.PUBLIC,
    # Counters only, but they show fleet size and traffic; [auth] metrics_public opens it.
    ("/metrics", "GET"): Access.READ,
    # The page and its scripts must load before they can ask for a key.
    ("/", "GET"): Access.PUBLIC,
    ("/static/{path:path}", "GET"): Access.PUBLIC,
    ("/dashboard/config.json", "GET"): Access.READ,
    ("/v1/geofences", "GET"): Access.READ,
    ("/v1/telemetry", "POST"): Access.DEVICE,
    ("/v1/vehicles", "GET"): Access.READ,
    ("/v1/vehicles/{device_id:path}", "GET"): Access.READ,
    ("/v1/vehicles/{device_id:path}/positions", "GET"): Access.READ,
    ("/v1/vehicles/{device_id:path}/trips", "GET"): Access.READ,
    ("/v1/events", "GET"): Access.READ,
    ("/v1/fleet/summary", "GET"): Access.READ,
    ("/v1/reports/fleet", "GET"): Access.READ,
    ("/v1/reports/vehicles/{device_id:path}", "GET"): Access.READ,
    ("/v1/live", WEBSOCKET): Access.READ,
    # Dead letters hold raw device payloads; notify rules hold recipients and webhooks.
    ("/v1/dead-letters", "GET"): Access.ADMIN,
    ("/v1/notify/rules", "GET"): Access.ADMIN,
    ("/v1/notify/rules", "POST"): Access.ADMIN,
    ("/v1/notify/rules/{rule_id}", "DELETE"): Access.ADMIN,
    ("/v1/notify/dead-letters", "GET"): Access.ADMIN,
}


def route_methods(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield (path template, method) for every route, descending into mounts.

    HEAD is left out because it follows GET.
    """
    for route in routes:
        if isinstance(route, Mount):
            yield from route_methods(list(route.routes), prefix + route.path)
        elif isinstance(route, WebSocketRoute):
            yield prefix + route.path, WEBSOCKET
        elif isinstance(route, Route):
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    yield prefix + route.path, method
        else:
            yield prefix + getattr(route, "path", repr(route)), "ANY"


def access_for(path: str, method: str, metrics_public: bool = False) -> Access:
    """Return the access rule of a route template and method; ADMIN when it has none."""
    if method == "HEAD":
        method = "GET"
    if metrics_public and (path, method) == ("/metrics", "GET"):
        return Access.PUBLIC
    return ROUTE_POLICY.get((path, method), Access.ADMIN)
