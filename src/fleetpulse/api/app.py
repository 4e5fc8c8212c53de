"""The ASGI application: ingest and query routes under one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from fleetpulse.api.context import ApiContext
from fleetpulse.api.errors import ApiError, handle_api_error, handle_http_exception
from fleetpulse.api.events import event_routes
from fleetpulse.api.fleet import fleet_routes
from fleetpulse.api.live import live_routes
from fleetpulse.api.reports import report_routes
from fleetpulse.api.rules import rule_routes
from fleetpulse.api.system import system_routes
from fleetpulse.api.vehicles import vehicle_routes
from fleetpulse.auth.middleware import auth_middleware
from fleetpulse.ingest.http import telemetry_fast_path
from fleetpulse.live.hub import LiveHub
from fleetpulse.notify.notifier import Notifier
from fleetpulse.web.routes import web_routes


def create_app(
    ctx: ApiContext,
    extra_routes: list[BaseRoute] | None = None,
    live_hub: LiveHub | None = None,
    notifier: Notifier | None = None,
) -> Starlette:
    """Build the app serving the query API, plus ``extra_routes`` such as ingestion.

    ``live_hub`` serves the WebSocket stream ``/v1/live``. Without it the route rejects
    every client, because only a process that runs the processor has live data.
    ``notifier`` serves ``/v1/notify/...``; without it those routes respond with 503.
    With ``[auth] enabled`` every route requires the key that ``auth.policy`` names.
    A telemetry route from ``extra_routes`` is also served in front of the router, after
    the auth check (``ingest.http.TelemetryFastPath``).
    Raises KeyFileError when the key file is invalid or readable by other users.
    """
    routes: list[BaseRoute] = [
        *(extra_routes or []),
        *vehicle_routes(ctx),
        *event_routes(ctx),
        *fleet_routes(ctx),
        *report_routes(ctx),
        *system_routes(ctx),
        *live_routes(live_hub),
        *rule_routes(notifier),
        *web_routes(ctx),
    ]
    return Starlette(
        routes=routes,
        middleware=[auth_middleware(ctx.settings), *telemetry_fast_path(routes)],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
        },
    )
