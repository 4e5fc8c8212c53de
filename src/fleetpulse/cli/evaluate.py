"""``fleetpulse evaluate``: score every detector against the simulator's ground truth.

Exit codes: 0 every floor met, 1 a floor missed or a run failed, 2 invalid options,
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from fleetpulse.evaluate import DEFAULT_TOLERANCE_S, SCENARIOS, format_table, run_evaluation
from fleetpulse.sim.errors import SimError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_VEHICLES = 20
DEFAULT_DURATION_S = 3600.0
DEFAULT_SEED = 1


def add_parser(subparsers: Any) -> None:
    """Register the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score every detector against simulated fleets whose truth is known",
        description=(
            "Run simulated scenarios through an embedded server on 127.0.0.1 with a "
            "temporary data folder, and compare its events and trips with the "
            "simulator's ground truth: precision, recall and delay per event type, trip "
            "count, distance and idle time. Exits with 1 if a floor is missed."
        ),
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        metavar="NAME",
        help="scenario to run, repeatable: " + ", ".join(SCENARIOS) + " (default: all)",
    )
    parser.add_argument(
        "--vehicles",
        type=int,
        default=DEFAULT_VEHICLES,
        help="vehicles per scenario (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="S",
        help="simulated seconds of device time per scenario (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE_S,
        metavar="S",
        help="seconds an event may lie outside its truth entry's window and still match "
        "(default: %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the scores to FILE as JSON")
    parser.add_argument(
        "--log-level", default="warning", help="log level on stderr (default: %(default)s)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``fleetpulse evaluate`` with parsed arguments and return the exit code."""
    from fleetpulse.cli.main import configure_logging

    if args.vehicles < 1 or not 0 < args.duration < float("inf") or args.tolerance < 0:
        print(
            "fleetpulse evaluate: --vehicles must be at least 1, --duration positive and "
            "--tolerance 0 or more",
            file=sys.stderr,
        )
        return EXIT_USAGE
    configure_logging(args.log_level)
    names = args.scenario or list(SCENARIOS)
    started_s = time.monotonic()

    def show_progress(number: int, total: int, name: str) -> None:
        elapsed_s = time.monotonic() - started_s
        print(
            f"[{number}/{total}] scenario {name}: {args.vehicles} vehicles, "
            f"{args.duration:g} s (started after {elapsed_s:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    try:
        evaluation = asyncio.run(
            run_evaluation(
                names,
                args.vehicles,
                args.duration,
                args.seed,
                args.tolerance,
                on_scenario=show_progress,
            )
        )
    except (SimError, RuntimeError) as exc:
        print(f"fleetpulse evaluate: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("fleetpulse evaluate: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

    print(format_table(evaluation))
    if args.json:
        document = msgspec.json.format(msgspec.json.encode(evaluation))
        Path(args.json).write_bytes(document + b"\n")
    return EXIT_FAILED if evaluation.failures else 0
