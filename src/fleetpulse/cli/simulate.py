"""``fleetpulse simulate``: drive a simulated fleet against a running server.

Exit codes: 0 done, 1 the server was unreachable or a batch could not be delivered,
2 invalid options, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from fleetpulse.sim.clock import parse_speed
from fleetpulse.sim.errors import SimError
from fleetpulse.sim.options import DEFAULT_URL, SimulationOptions
from fleetpulse.sim.progress import ProgressLine
from fleetpulse.sim.simulation import SimulationSummary, simulate
from fleetpulse.sim.transports import transport_names

__all__ = ["add_parser", "format_rejections", "run", "simulate", "speed_argument"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register the ``simulate`` sub-command, whose ``func`` runs it and returns the exit code."""
    parser = subparsers.add_parser(
        "simulate",
        help="send the records of a simulated fleet to a fleetpulse server",
        description=(
            "Simulate a fleet of vehicles driving around a synthetic city and send their "
            "records to POST /v1/telemetry. Injected behaviours and bad records are written "
            "to a ground-truth JSONL file."
        ),
        epilog=(
            "With authentication on, set FLEETPULSE_TOKEN to an admin key or a device "
            "token that lists every sending device; each HTTP batch carries it as a "
            "bearer token."
        ),
    )
    defaults = SimulationOptions()
    _add_fleet_arguments(parser.add_argument_group("fleet"), defaults)
    _add_sending_arguments(parser.add_argument_group("sending"), defaults)
    _add_output_arguments(parser.add_argument_group("output"), defaults)
    parser.set_defaults(func=run)
    return parser


def _add_fleet_arguments(group: argparse._ArgumentGroup, defaults: SimulationOptions) -> None:
    group.add_argument(
        "--vehicles",
        type=int,
        default=defaults.vehicles,
        help="number of vehicles (default: %(default)s)",
    )
    group.add_argument(
        "--rate",
        type=float,
        default=defaults.rate_hz,
        metavar="HZ",
        help="records per second per vehicle (default: %(default)s)",
    )
    group.add_argument(
        "--duration",
        type=float,
        default=defaults.duration_s,
        metavar="S",
        help="simulated seconds of device time (default: %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="random seed, which fixes the whole fleet (default: %(default)s)",
    )
    group.add_argument(
        "--bad-share",
        type=float,
        default=defaults.bad_share,
        metavar="X",
        help="bad records injected per good record, 0-1 (default: %(default)s)",
    )
    group.add_argument(
        "--duplicate-share",
        type=float,
        default=defaults.duplicate_share,
        metavar="X",
        help="records sent twice per good record, 0-1 (default: %(default)s)",
    )


def _add_sending_arguments(group: argparse._ArgumentGroup, defaults: SimulationOptions) -> None:
    group.add_argument(
        "--protocol",
        choices=transport_names(),
        default=defaults.protocol,
        help="how records are sent: http (POST /v1/telemetry), teltonika (TCP, "
        "--url tcp://127.0.0.1:5027) or another device protocol (default: %(default)s)",
    )
    group.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="base URL of the fleetpulse server, or tcp://HOST:PORT for teltonika "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--speed",
        type=speed_argument,
        default=defaults.speed,
        metavar="F",
        help="time factor: 1 is real time, 60 runs an hour in a minute, "
        "0 or max sends as fast as the server takes (default: 1)",
    )
    group.add_argument(
        "--batch",
        type=int,
        default=defaults.batch_size,
        metavar="N",
        help="maximum records per request (default: %(default)s)",
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=defaults.concurrency,
        metavar="N",
        help="concurrent HTTP connections (default: %(default)s)",
    )


def _add_output_arguments(group: argparse._ArgumentGroup, defaults: SimulationOptions) -> None:
    group.add_argument(
        "--truth",
        default=defaults.truth_path,
        metavar="FILE",
        help="ground-truth JSONL file to write (default: %(default)s)",
    )
    group.add_argument(
        "--json-summary", metavar="FILE", help="also write the final summary to FILE as JSON"
    )


def speed_argument(text: str) -> float:
    """Parse --speed for argparse: a positive factor, or ``max``/``0`` (math.inf)."""
    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run ``fleetpulse simulate`` with parsed arguments and return the exit code."""
    try:
        options = SimulationOptions(
            vehicles=args.vehicles,
            rate_hz=args.rate,
            duration_s=args.duration,
            url=args.url,
            seed=args.seed,
            speed=args.speed,
            batch_size=args.batch,
            bad_share=args.bad_share,
            duplicate_share=args.duplicate_share,
            concurrency=args.concurrency,
            truth_path=args.truth,
            protocol=args.protocol,
        )
    except ValueError as exc:
        print(f"fleetpulse simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE

    progress = ProgressLine(sys.stderr)
    try:
        summary = asyncio.run(simulate(options, progress.update))
    except SimError as exc:
        progress.close()
        print(f"fleetpulse simulate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        progress.close()
        print("fleetpulse simulate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    progress.close()

    print(format_summary(summary))
    if args.json_summary:
        document = msgspec.json.format(msgspec.json.encode(summary))
        Path(args.json_summary).write_bytes(document + b"\n")
    return 0


def format_summary(summary: SimulationSummary) -> str:
    """Return the human-readable summary printed at the end of a run."""
    speed = summary.speed if isinstance(summary.speed, str) else f"x{summary.speed:g}"
    lines = [
        f"simulated {summary.vehicles} vehicles for {summary.duration_s:g} s of device time "
        f"at {summary.rate_hz:g} Hz ({speed}) in {summary.elapsed_s:.1f} s",
        f"records: {summary.records_generated:,} generated, {summary.records_sent:,} sent, "
        f"{summary.accepted:,} accepted, {summary.rejected:,} rejected, "
        f"{summary.retries:,} retries, {summary.rate_rps:,.0f} records/s",
    ]
    if summary.rejected_by_reason:
        lines.append("rejected by reason: " + format_rejections(summary.rejected_by_reason))
    if summary.ack_p50_ms is not None:
        lines.append(
            f"acknowledgement latency: p50 {summary.ack_p50_ms:g} ms, "
            f"p99 {summary.ack_p99_ms:g} ms, p99.9 {summary.ack_p999_ms:g} ms"
        )
    injected = (
        f"injected: {summary.bad_records_injected:,} bad records, "
        f"{summary.duplicates_injected:,} duplicates"
    )
    if summary.truth_path:
        injected += f"; ground truth in {summary.truth_path}"
    lines.append(injected)
    return "\n".join(lines)


def format_rejections(by_reason: dict[str, int]) -> str:
    """Return ``reason count, ...`` ordered by count, largest first."""
    ordered = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {count:,}" for reason, count in ordered)
