"""The web dashboard: static page and scripts served at ``/``, plus the geofence endpoint."""

from fleetpulse.web.routes import STATIC_DIR, web_routes

__all__ = ["STATIC_DIR", "web_routes"]
