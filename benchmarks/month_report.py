"""Time the month fleet report on a store with a month of data of a large fleet.

Writes trips and events straight into a SQLite store through ``Store.write`` (no HTTP,
no processing), so the hourly aggregates are built by the same write path as in
production. Then builds the fleet report of the whole month several times, and a
vehicle's month report, and prints the p50 and max of each.

    .venv/bin/python benchmarks/month_report.py --vehicles 1000 --days 30 --runs 7
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

from fleetpulse.api.render import encoder
from fleetpulse.config import load_settings
from fleetpulse.model.event import Event, Trip
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import HARSH_ACCELERATION, HARSH_BRAKING, OVERSPEED
from fleetpulse.reports import (
    build_fleet_report,
    build_vehicle_report,
    report_csv,
    report_json,
    report_period,
)
from fleetpulse.store.base import ProcessedBatch, VehicleSnapshot
from fleetpulse.store.sqlite import SqliteStore

FIRST_DAY = date(2026, 11, 1)
DAY_MS = 86_400_000
# A delivery or service vehicle: a handful of trips of a few to a few tens of km a day.
TRIPS_PER_DAY = 6
MIN_TRIP_M = 2_000.0
MAX_TRIP_M = 40_000.0
# Mean events per vehicle and day of each counted type: a few harsh events and fewer
# overspeeds, so the events table is of a realistic size next to the trips.
HARSH_PER_DAY = 2
OVERSPEEDS_PER_DAY = 1


def _day_batch(rng: random.Random, device_ids: list[str], day_ms: int) -> ProcessedBatch:
    trips: list[Trip] = []
    events: list[Event] = []
    for device_id in device_ids:
        start_ms = day_ms + 6 * 3_600_000 + rng.randrange(3_600_000)
        for _ in range(TRIPS_PER_DAY):
            distance_m = rng.uniform(MIN_TRIP_M, MAX_TRIP_M)
            duration_s = distance_m / rng.uniform(8.0, 20.0)
            trips.append(
                Trip(
                    device_id=device_id,
                    start_ts_ms=start_ms,
                    start_lat=48.1,
                    start_lon=11.5,
                    end_ts_ms=start_ms + int(duration_s * 1000),
                    end_lat=48.2,
                    end_lon=11.6,
                    distance_m=distance_m,
                    duration_s=duration_s,
                    max_speed_kmh=rng.uniform(50.0, 140.0),
                    avg_speed_kmh=distance_m / duration_s * 3.6,
                    idle_s=rng.uniform(0.0, duration_s / 5),
                )
            )
            start_ms += int(duration_s * 1000) + rng.randrange(600_000, 3_600_000)
        for index in range(HARSH_PER_DAY + OVERSPEEDS_PER_DAY):
            type_ = (
                OVERSPEED
                if index < OVERSPEEDS_PER_DAY
                else rng.choice((HARSH_BRAKING, HARSH_ACCELERATION))
            )
            details = {"duration_s": rng.uniform(10.0, 120.0), "ongoing": False}
            events.append(
                Event(
                    device_id=device_id,
                    ts_ms=day_ms + rng.randrange(DAY_MS),
                    type=type_,
                    severity="warning",
                    details=details,
                )
            )
    return ProcessedBatch(trips=trips, events=events)


def _snapshots(device_ids: list[str], last_ts_ms: int) -> list[VehicleSnapshot]:
    return [
        VehicleSnapshot(
            view=VehicleView(
                device_id=device_id,
                last_ts_ms=last_ts_ms,
                last_received_at_ms=last_ts_ms,
                motion="parked",
                status="normal",
            ),
            state=b"",
        )
        for device_id in device_ids
    ]


async def _fill(store: SqliteStore, vehicles: int, days: int, seed: int) -> float:
    rng = random.Random(seed)
    device_ids = [f"bench-{index:05d}" for index in range(vehicles)]
    first_ms = report_period(FIRST_DAY, FIRST_DAY).from_ms
    started = time.perf_counter()
    for day in range(days):
        await store.write(_day_batch(rng, device_ids, first_ms + day * DAY_MS))
    await store.write(ProcessedBatch(vehicles=_snapshots(device_ids, first_ms + days * DAY_MS)))
    return time.perf_counter() - started


async def _time_runs(runs: int, build: Callable[[], Awaitable[None]]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await build()
        times.append(time.perf_counter() - started)
    return times


def _line(label: str, times: list[float]) -> str:
    return f"{label}: p50 {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms"


async def run(vehicles: int, days: int, runs: int, data_dir: Path, seed: int) -> None:
    """Fill a store in ``data_dir`` and print the timings of the month reports."""
    settings = load_settings(environ={}, overrides={"server": {"data_dir": str(data_dir)}})
    store = SqliteStore(settings)
    await store.start()
    try:
        fill_s = await _fill(store, vehicles, days, seed)
        trips = vehicles * days * TRIPS_PER_DAY
        print(f"wrote {trips} trips of {vehicles} vehicles over {days} days in {fill_s:.1f} s")

        period = report_period(FIRST_DAY, FIRST_DAY + timedelta(days=days - 1))

        async def fleet_json() -> None:
            encoder.encode(report_json(await build_fleet_report(store, period)))

        async def fleet_csv() -> None:
            report_csv(await build_fleet_report(store, period))

        async def vehicle_json() -> None:
            encoder.encode(report_json(await build_vehicle_report(store, "bench-00000", period)))

        print(_line("fleet report, json", await _time_runs(runs, fleet_json)))
        print(_line("fleet report, csv", await _time_runs(runs, fleet_csv)))
        print(_line("vehicle report, json", await _time_runs(runs, vehicle_json)))
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=1_000, help="vehicles (default 1000)")
    parser.add_argument("--days", type=int, default=30, help="days of data (default 30)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per report (default 7)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--data-dir", type=Path, help="directory of store.db (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.data_dir is not None:
        asyncio.run(run(args.vehicles, args.days, args.runs, args.data_dir, args.seed))
        return
    with tempfile.TemporaryDirectory(prefix="fleetpulse-month-") as tmp:
        asyncio.run(run(args.vehicles, args.days, args.runs, Path(tmp), args.seed))


if __name__ == "__main__":
    main()
