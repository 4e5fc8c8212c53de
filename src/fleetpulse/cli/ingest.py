"""``fleetpulse ingest``: the ingest role alone, publishing to a shared queue."""

from __future__ import annotations

from typing import Any

from fleetpulse.cli.role_command import add_role_parser


def add_parser(subparsers: Any) -> None:
    """Register the ``ingest`` sub-command."""
    add_role_parser(
        subparsers,
        "ingest",
        summary="serve POST /v1/telemetry and the device listeners, publishing to the queue",
        description="Serve POST /v1/telemetry and the enabled protocol listeners "
        "(Teltonika, OsmAnd, MQTT), publish valid records to the JetStream queue and write "
        "dead letters to the PostgreSQL store. Listens on [server] host and port.",
        port=None,
    )
