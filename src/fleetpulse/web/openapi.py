"""OpenAPI paths of the dashboard routes, merged into the API's document."""

from __future__ import annotations

from typing import Any


def _get(summary: str, description: str, media_type: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "description": description,
            "responses": {"200": {"description": summary, "content": {media_type: {}}}},
        }
    }


def web_paths() -> dict[str, Any]:
    """Return the OpenAPI path items of the dashboard page, its files and geofences."""
    static = _get(
        "Dashboard file",
        "A script, style sheet or vendored library of the dashboard. 404 for other paths.",
        "application/octet-stream",
    )
    static["get"]["parameters"] = [
        {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    static["get"]["responses"]["404"] = {"description": "No such file"}
    geofences = _get(
        "Configured geofences",
        "Every [[geofences]] entry of the settings: a circle (lat, lon, radius_m) or a "
        "polygon ([[lat, lon], ...]), with id and name.",
        "application/json",
    )
    return {
        "/": _get("Dashboard page", "The live fleet dashboard (HTML).", "text/html"),
        "/dashboard/config.json": _get(
            "Dashboard settings",
            "tile_url and tile_attribution from [web], offline_after_s, overspeed_limit_kmh, "
            "and live_available: whether this server serves GET /v1/live.",
            "application/json",
        ),
        "/static/{path}": static,
        "/v1/geofences": geofences,
    }
