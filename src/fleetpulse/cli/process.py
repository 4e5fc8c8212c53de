"""``fleetpulse process``: the process role alone, consuming a shared queue."""

from __future__ import annotations

from typing import Any

from fleetpulse.cli.role_command import add_role_parser
from fleetpulse.roles.standalone import PROCESS_PORT


def add_parser(subparsers: Any) -> None:
    """Register the ``process`` sub-command."""
    add_role_parser(
        subparsers,
        "process",
        summary="process records from the queue into the store, and send notifications",
        description="Consume the JetStream queue, process each vehicle's records in order, "
        "write them to the PostgreSQL store, publish live updates on the NATS live bus and "
        "send notifications. Run several for more throughput: they share the queue's "
        f"partitions. Serves only /healthz and /metrics, on port {PROCESS_PORT} unless "
        "--port is given.",
        port=PROCESS_PORT,
    )
