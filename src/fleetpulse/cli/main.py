"""The ``fleetpulse`` command: one sub-command per job."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fleetpulse import __version__
from fleetpulse.cli import api, db, demo, evaluate, ingest, keys, process, replay, run, simulate

DESCRIPTION = """\
fleetpulse: a real-time vehicle telemetry pipeline.

  fleetpulse run        serve ingest, processing and the query API in one process
  fleetpulse demo       run plus a simulated fleet, with a live summary
  fleetpulse ingest     only ingest, for a deployment on several machines
  fleetpulse process    only processing, for a deployment on several machines
  fleetpulse api        only the query API and live stream, for such a deployment
  fleetpulse simulate   drive a running server with a simulated fleet
  fleetpulse replay     send recorded drives (GPX, GeoJSON, CSV, JSON) to a server
  fleetpulse evaluate   score every detector against simulated fleets with known truth
  fleetpulse keys       create, list and revoke API keys and device tokens
  fleetpulse db         upgrade or inspect the schema of the PostgreSQL store
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="fleetpulse",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fleetpulse {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    run.add_parser(subparsers)
    demo.add_parser(subparsers)
    ingest.add_parser(subparsers)
    process.add_parser(subparsers)
    api.add_parser(subparsers)
    simulate.add_parser(subparsers)
    replay.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    keys.add_parser(subparsers)
    db.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    exit_code: int = args.func(args)
    return exit_code


def configure_logging(level: str) -> None:
    """Send log lines to stderr at the given level name, with tokens redacted.

    The redacting filter sits on the root handlers, so it also covers the lines of
    libraries such as uvicorn and websockets, which log request targets and headers.
    """
    from fleetpulse.auth.redact import install_on_handlers, install_on_loggers

    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    install_on_handlers(logging.getLogger().handlers)
    install_on_loggers()


if __name__ == "__main__":
    sys.exit(main())
