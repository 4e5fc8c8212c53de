"""The command line shared by `fleetpulse ingest`, `fleetpulse process` and `fleetpulse api`."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from fleetpulse import __version__
from fleetpulse.cli.server_options import (
    add_server_options,
    run_event_loop,
    settings_from_args,
)
from fleetpulse.errors import FleetpulseError
from fleetpulse.roles.standalone import RoleName


def add_role_parser(
    subparsers: Any, role: RoleName, summary: str, description: str, port: int | None
) -> None:
    """Register one role's sub-command with the options of ``run``.

    ``port`` is the default of --port, and None keeps ``[server] port``.
    """
    parser = subparsers.add_parser(
        role,
        help=summary,
        description=description + " Every process of a deployment reads the same --config "
        "file; docs/deployment.md shows how to run them. Stop with Ctrl-C or SIGTERM.",
    )
    add_server_options(parser, default_port=port)
    parser.set_defaults(func=functools.partial(main, role))


def main(role: RoleName, args: argparse.Namespace) -> int:
    """Run one role until Ctrl-C or SIGTERM and return the exit code."""
    from fleetpulse.cli.main import configure_logging

    try:
        settings = settings_from_args(args)
    except FleetpulseError as exc:
        print(f"fleetpulse {role}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.server.log_level)
    try:
        run_event_loop(_serve(role, settings))
    except KeyboardInterrupt:
        pass
    except (FleetpulseError, OSError) as exc:
        print(f"fleetpulse {role}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(role: RoleName, settings: Any) -> None:
    from fleetpulse.auth.bind import describe_auth
    from fleetpulse.roles.standalone import RoleServer, describe_backends

    server = RoleServer(settings, role)
    await server.start()
    lines = [
        f"fleetpulse {__version__} {role} listening on {server.url}",
        f"  backends: {describe_backends(settings, role)}",
    ]
    if role == "ingest":
        lines.append(f"  ingest:  POST {server.url}/v1/telemetry")
        lines.extend(f"  device:  {address}" for address in server.listeners)
    elif role == "api":
        lines.append(f"  web:     GET  {server.url}/  (dashboard)")
        lines.append(f"  query:   GET  {server.url}/v1/vehicles, /v1/events, /v1/fleet/summary")
        lines.append(f"  live:    GET  {server.url}/v1/live  (WebSocket)")
    lines.append(f"  health:  GET  {server.url}/healthz   metrics: {server.url}/metrics")
    lines.append(f"  auth:    {describe_auth(settings)}")
    lines.append("  stop with Ctrl-C")
    print("\n".join(lines), flush=True)
    try:
        await server.wait()
    finally:
        await server.close()
