"""``fleetpulse replay FILE...``: send recorded drives to a server as a device would.

Exit codes: 0 done, 1 a trace could not be read, the server was unreachable or a batch
could not be delivered, 2 invalid options, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from fleetpulse.cli.simulate import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    format_rejections,
    speed_argument,
)
from fleetpulse.sim.errors import SimError
from fleetpulse.sim.options import DEFAULT_URL
from fleetpulse.sim.progress import ProgressLine
from fleetpulse.sim.replay import ReplayOptions, ReplaySummary, replay

__all__ = ["add_parser", "replay", "run"]


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register the ``replay`` sub-command, whose ``func`` runs it and returns the exit code."""
    defaults = ReplayOptions(files=["-"])
    parser = subparsers.add_parser(
        "replay",
        help="send recorded traces (GPX, GeoJSON, CSV, barefoot JSON) to a fleetpulse server",
        description=(
            "Replay recorded drives to POST /v1/telemetry, one device per file. By default "
            "each trace is shifted in time so that it ends when the replay ends."
        ),
        epilog=(
            "With authentication on, set FLEETPULSE_TOKEN to an admin key or a device "
            "token that lists every sending device; each HTTP batch carries it as a "
            "bearer token."
        ),
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="trace files, whose format is detected from the extension and content",
    )

    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--speed",
        type=speed_argument,
        default=defaults.speed,
        metavar="F",
        help="time factor: 1 is real time, 10 is ten times faster, "
        "0 or max sends as fast as the server takes (default: 1)",
    )
    timing.add_argument(
        "--keep-times",
        action="store_true",
        help="send the recorded timestamps instead of shifting the trace to "
        "end now (the server rejects records older than its "
        "ingest.max_age_days)",
    )

    sending = parser.add_argument_group("sending")
    sending.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="base URL of the fleetpulse server (default: %(default)s)",
    )
    sending.add_argument(
        "--device-id", help="device id for a single FILE (default: derived from the file name)"
    )
    sending.add_argument(
        "--batch",
        type=int,
        default=defaults.batch_size,
        metavar="N",
        help="maximum records per request (default: %(default)s)",
    )
    sending.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        metavar="N",
        help="concurrent HTTP connections (default: %(default)s)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json-summary", metavar="FILE", help="also write the final summary to FILE as JSON"
    )

    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``fleetpulse replay`` with parsed arguments and return the exit code."""
    try:
        options = ReplayOptions(
            files=list(args.files),
            url=args.url,
            speed=args.speed,
            keep_times=args.keep_times,
            device_id=args.device_id,
            batch_size=args.batch,
            concurrency=args.concurrency,
        )
    except ValueError as exc:
        print(f"fleetpulse replay: {exc}", file=sys.stderr)
        return EXIT_USAGE

    progress = ProgressLine(sys.stderr)
    try:
        summary = asyncio.run(replay(options, progress.update))
    except SimError as exc:
        progress.close()
        print(f"fleetpulse replay: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        progress.close()
        print("fleetpulse replay: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.close()

    print(format_summary(summary))
    if args.json_summary:
        document = msgspec.json.format(msgspec.json.encode(summary))
        Path(args.json_summary).write_bytes(document + b"\n")
    return 0


def format_summary(summary: ReplaySummary) -> str:
    """Return the human-readable summary printed at the end of a replay."""
    speed = summary.speed if isinstance(summary.speed, str) else f"x{summary.speed:g}"
    lines = [
        f"replayed {len(summary.files)} traces as {', '.join(summary.device_ids)} "
        f"({speed}) in {summary.elapsed_s:.1f} s",
        f"records: {summary.points:,} read, {summary.records_sent:,} sent, "
        f"{summary.accepted:,} accepted, {summary.rejected:,} rejected, "
        f"{summary.retries:,} retries",
    ]
    if summary.rejected_by_reason:
        lines.append("rejected by reason: " + format_rejections(summary.rejected_by_reason))
    return "\n".join(lines)
