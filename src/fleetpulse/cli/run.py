"""``fleetpulse run``: every stage on one machine, on the embedded queue and store.

Ingest and the query API run in this process, the processor in a child process
(``[process] child_process``), so that processing has a core of its own.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from fleetpulse import __version__
from fleetpulse.cli.server_options import (
    add_server_options,
    run_event_loop,
    settings_from_args,
)
from fleetpulse.errors import FleetpulseError

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    """Register the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="serve ingest, processing and the query API on one machine",
        description="Serve POST /v1/telemetry, process the records and serve the query API, "
        "with the queue and store in --data-dir; the processor runs in a child process. "
        "Stop with Ctrl-C.",
    )
    add_server_options(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``fleetpulse run``."""
    from fleetpulse.cli.main import configure_logging

    try:
        settings = settings_from_args(args)
    except FleetpulseError as exc:
        print(f"fleetpulse run: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.server.log_level)
    try:
        run_event_loop(_serve(settings))
    except KeyboardInterrupt:
        pass
    except (FleetpulseError, OSError) as exc:
        print(f"fleetpulse run: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(settings: Any) -> None:
    from fleetpulse.auth.bind import describe_auth
    from fleetpulse.server import EmbeddedServer

    server = EmbeddedServer(settings)
    await server.start()
    print(
        f"fleetpulse {__version__} listening on {server.url}\n"
        f"  web:     GET  {server.url}/  (dashboard)\n"
        f"  ingest:  POST {server.url}/v1/telemetry\n"
        f"  query:   GET  {server.url}/v1/vehicles, /v1/events, /v1/fleet/summary\n"
        f"  docs:    GET  {server.url}/openapi.json   metrics: {server.url}/metrics\n"
        f"  auth:    {describe_auth(settings)}\n"
        + "".join(f"  device:  {listener.describe()}\n" for listener in server.listeners)
        + f"  data in {settings.server.data_dir}; stop with Ctrl-C",
        flush=True,
    )
    try:
        await server.wait()
    finally:
        await server.close()
