"""Routes of the dashboard: the page, its static files, its settings and the geofences.

The page is plain HTML and JavaScript modules with Leaflet vendored under
``static/vendor/``, so it loads nothing from outside the server unless
``[web] tile_url`` names a tile server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from fleetpulse.api.context import ApiContext
from fleetpulse.api.render import encoder
from fleetpulse.config import Geofence

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_HTML = STATIC_DIR / "index.html"
# The page and its modules change with each release and are small, so browsers
# revalidate them on every load instead of running a stale script against a newer API.
NO_CACHE = {"Cache-Control": "no-cache"}
LIVE_PATH = "/v1/live"


def geofence_json(fence: Geofence) -> dict[str, Any]:
    """Render one geofence: a circle (``lat``, ``lon``, ``radius_m``) or a ``polygon``."""
    polygon = None if fence.polygon is None else [[lat, lon] for lat, lon in fence.polygon]
    return {
        "id": fence.id,
        "name": fence.name,
        "lat": fence.lat,
        "lon": fence.lon,
        "radius_m": fence.radius_m,
        "polygon": polygon,
    }


def _serves_path(request: Request, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in request.app.routes)


def web_routes(ctx: ApiContext) -> list[BaseRoute]:
    """Build the dashboard routes. Mount them after the API routes, which take precedence."""

    async def index(request: Request) -> Response:
        return FileResponse(INDEX_HTML, headers=NO_CACHE)

    async def geofences(request: Request) -> Response:
        fences = [geofence_json(fence) for fence in ctx.settings.geofences]
        body = {"count": len(fences), "geofences": fences}
        return Response(encoder.encode(body), media_type="application/json")

    async def dashboard_config(request: Request) -> Response:
        settings = ctx.settings
        body = {
            "tile_url": settings.web.tile_url,
            "tile_attribution": settings.web.tile_attribution,
            "offline_after_s": settings.process.offline_after_s,
            "overspeed_limit_kmh": settings.detectors.overspeed_limit_kmh,
            # The page polls instead of opening a WebSocket the server does not serve.
            "live_available": _serves_path(request, LIVE_PATH),
        }
        return Response(encoder.encode(body), media_type="application/json", headers=NO_CACHE)

    async def static_file(request: Request) -> Response:
        return FileResponse(resolve_static(request.path_params["path"]), headers=NO_CACHE)

    log.debug("dashboard static files from %s", STATIC_DIR)
    return [
        Route("/", index, methods=["GET"]),
        Route("/v1/geofences", geofences, methods=["GET"]),
        Route("/dashboard/config.json", dashboard_config, methods=["GET"]),
        Route("/static/{path:path}", static_file, methods=["GET"]),
    ]


def resolve_static(relative: str) -> Path:
    """Return the file under STATIC_DIR named by ``relative``, or raise a 404 HTTPException.

    Paths that leave STATIC_DIR (``..``, absolute paths, symbolic links out) are not found.
    """
    try:
        candidate = (STATIC_DIR / relative).resolve()
        found = candidate.is_relative_to(STATIC_DIR) and candidate.is_file()
    except OSError:
        # A name the file system cannot hold (ENAMETOOLONG, for example) names no file.
        found = False
    if not found:
        raise HTTPException(404, f"/static/{relative}: file not found; open the dashboard at /")
    return candidate
