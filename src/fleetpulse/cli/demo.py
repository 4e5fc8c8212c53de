"""``fleetpulse demo``: the embedded server plus a simulated fleet, with a live summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import tempfile
import time
from typing import Any

import msgspec

from fleetpulse import __version__, metrics
from fleetpulse.cli.server_options import (
    add_server_options,
    run_event_loop,
    settings_from_args,
)
from fleetpulse.config import Settings
from fleetpulse.errors import FleetpulseError
from fleetpulse.model.vocabulary import IDLE, MOVING, OFFLINE, PARKED

log = logging.getLogger(__name__)

# A day of simulated driving: longer than anyone watches a demo, and finite.
DEFAULT_DURATION_S = 86_400.0
DEFAULT_VEHICLES = 300


def add_parser(subparsers: Any) -> None:
    """Register the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the server plus a simulated fleet, with a live summary",
        description="Start `fleetpulse run` and drive it with a simulated fleet in the same "
        "process. Prints the API address, then a summary line every few seconds, until "
        "Ctrl-C. Without --data-dir the data goes to a temporary folder that is removed "
        "at the end.",
    )
    add_server_options(parser)
    parser.add_argument(
        "--vehicles",
        type=int,
        default=DEFAULT_VEHICLES,
        help=f"vehicles in the simulated fleet (default {DEFAULT_VEHICLES})",
    )
    parser.add_argument(
        "--rate", type=float, default=1.0, help="records per second per vehicle (default 1)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        help="seconds of simulated driving (default 86400, a day)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet (default 1)")
    parser.add_argument(
        "--summary-every",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between summary lines (default 5)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Entry point of ``fleetpulse demo``."""
    from fleetpulse.cli.main import configure_logging

    temporary_dir = None
    if args.data_dir is None:
        temporary_dir = tempfile.mkdtemp(prefix="fleetpulse-demo-")
        args.data_dir = temporary_dir
    try:
        settings = settings_from_args(args)
    except FleetpulseError as exc:
        print(f"fleetpulse demo: {exc}", file=sys.stderr)
        return 2
    # The summary lines are the demo's output; routine log lines would bury them.
    configure_logging(args.log_level or "warning")
    try:
        run_event_loop(_demo(settings, args))
    except KeyboardInterrupt:
        pass
    except (FleetpulseError, OSError) as exc:
        print(f"fleetpulse demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if temporary_dir is not None:
            shutil.rmtree(temporary_dir, ignore_errors=True)
    return 0


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from fleetpulse.server import EmbeddedServer
    from fleetpulse.sim.options import SimulationOptions
    from fleetpulse.sim.simulation import simulate

    server = EmbeddedServer(settings)
    await server.start()
    url = server.url
    print(
        f"fleetpulse {__version__} demo: {args.vehicles} simulated vehicles at {args.rate} Hz\n"
        f"  dashboard: {url}/\n"
        f"  API:      {url}/v1/fleet/summary   {url}/v1/vehicles   {url}/v1/events\n"
        f"  docs:     {url}/openapi.json   metrics: {url}/metrics\n"
        f"  data in {settings.server.data_dir}; stop with Ctrl-C\n",
        flush=True,
    )
    options = SimulationOptions(
        vehicles=args.vehicles,
        rate_hz=args.rate,
        duration_s=args.duration,
        url=url,
        seed=args.seed,
        truth_path=f"{settings.server.data_dir}/sim-truth.jsonl",
    )
    started_s = time.monotonic()
    simulation = asyncio.create_task(simulate(options), name="demo-simulation")
    serving = asyncio.create_task(server.wait(), name="demo-serving")
    reporter = asyncio.create_task(_report(server, args.summary_every, started_s))
    try:
        # Wakes when the simulation ends (its duration is over, or it failed) or when the
        # HTTP server stops (Ctrl-C or SIGTERM).
        await asyncio.wait({simulation, serving}, return_when=asyncio.FIRST_COMPLETED)
        if simulation.done() and not serving.done():
            _print_simulation_end(simulation)
            await serving
    finally:
        for task in (simulation, reporter, serving):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        print(await _summary_line(server, started_s), flush=True)
        await server.close()


def _print_simulation_end(simulation: asyncio.Task[Any]) -> None:
    error = simulation.exception()
    if error is not None:
        print(f"simulation stopped: {error}", file=sys.stderr, flush=True)
        return
    summary = msgspec.to_builtins(simulation.result())
    print(
        f"simulation finished: {summary['records_sent']} records sent, "
        f"{summary['accepted']} accepted, {summary['rejected']} rejected; the server keeps "
        "running until Ctrl-C",
        flush=True,
    )


async def _report(server: Any, every_s: float, started_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            print(await _summary_line(server, started_s), flush=True)
        except Exception:
            log.exception("demo summary failed; trying again in %s s", every_s)


_previous: dict[str, float] = {}


async def _summary_line(server: Any, started_s: float) -> str:
    """Build one line: vehicles by motion, ingest rate, queue, lag and recent events."""
    now_ms = time.time_ns() // 1_000_000
    elapsed_s = time.monotonic() - started_s
    accepted = _sample("fleetpulse_records_accepted_total")
    rejected = _sample("fleetpulse_records_rejected_total")
    last_s, last_accepted = _previous.get("t", 0.0), _previous.get("accepted", 0.0)
    rate = (accepted - last_accepted) / (elapsed_s - last_s) if elapsed_s > last_s else 0.0
    _previous.update(t=elapsed_s, accepted=accepted)

    offline_after_ms = server.settings.process.offline_after_s * 1000
    motions = {MOVING: 0, IDLE: 0, PARKED: 0, OFFLINE: 0}
    views = await server.store.vehicles()
    for view in views:
        silent = now_ms - view.last_received_at_ms > offline_after_ms
        motion = OFFLINE if view.offline or silent else view.motion
        motions[motion] = motions.get(motion, 0) + 1
    recent = await server.store.event_counts(now_ms - 60_000, now_ms + 1)
    top = sorted(recent.items(), key=lambda item: -item[1])[:4]
    events = ", ".join(f"{name} {count}" for name, count in top) or "none"
    minutes, seconds = divmod(int(elapsed_s), 60)
    return (
        f"[{minutes:02d}:{seconds:02d}] vehicles {len(views)}: {motions[MOVING]} moving, "
        f"{motions[IDLE]} idle, {motions[PARKED]} parked, {motions[OFFLINE]} offline | "
        f"in {rate:,.0f} rec/s, {int(accepted):,} accepted, {int(rejected):,} rejected | "
        f"queue {server.queue.depth():,} | lag {_sample('fleetpulse_processing_lag_seconds'):.2f} s"
        f" | events last min: {events}"
    )


def _sample(name: str) -> float:
    total = 0.0
    for metric in metrics.REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == name:
                total += sample.value
    return total
