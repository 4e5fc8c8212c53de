"""``fleetpulse api``: the API role alone, reading a shared store."""

from __future__ import annotations

from typing import Any

from fleetpulse.cli.role_command import add_role_parser
from fleetpulse.roles.standalone import API_PORT


def add_parser(subparsers: Any) -> None:
    """Register the ``api`` sub-command."""
    add_role_parser(
        subparsers,
        "api",
        summary="serve the query API, the dashboard and the live stream from the store",
        description="Serve the query API, the dashboard and the /v1/live WebSocket from the "
        "PostgreSQL store, stream updates received on the NATS live bus and run retention. "
        f"Listens on port {API_PORT} unless --port is given.",
        port=API_PORT,
    )
