"""Per-record cost of each stage of the embedded pipeline, without HTTP.

Builds the records of the load benchmark's fleet (one record per vehicle per second) as
JSON request bodies of ``QUEUE_ROW_RECORDS`` records, then times, in this one process and
one stage at a time, each stage on the output of the one before:

- ``decode``: msgspec decoding of the bodies against ``RecordIn``, as the HTTP fast path
  does (this includes msgspec's type and range checks);
- ``validate``: ``validate_decoded``, the timestamp and attribute checks that turn each
  ``RecordIn`` into a ``Record``;
- ``enqueue``: ``SqliteQueue.publish`` of one row per body into a fresh ``queue.db``
  (``queue.synchronous`` as configured, "full" by default), ``ENQUEUE_CONCURRENCY``
  publishes at a time so that they share commits as concurrent requests do;
- ``fetch``: ``SqliteQueue.fetch`` of those rows back into ``Record`` lists;
- ``process``: ``process_records`` over batches of ``--batch`` records;
- ``store``: ``SqliteStore.write`` of the processed batches into a fresh ``store.db``
  (``store.synchronous`` as configured, "full" by default), awaited one after another;
- ``serial`` and ``overlap``: processing and storing together on a fresh store, in a
  worker thread and the store's writer thread as the processor runs them. ``serial``
  processes and writes one batch after the other, and ``overlap`` processes a batch
  while the previous one is written.

    .venv/bin/python benchmarks/stages.py --records 200000 --batch 5000
    .venv/bin/python benchmarks/stages.py --profile process    # cProfile of one stage
    .venv/bin/python benchmarks/stages.py --json stages.json   # also write the figures

Each stage prints its wall time and the CPU time of this process (all threads, so the
writer threads of the queue and the store count) per record. A loaded machine inflates
the wall time much more than the CPU time: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import msgspec

from fleet_payloads import BenchRecord, new_vehicle
from fleetpulse.config import QueueSettings, Settings
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.model.validate import validate_decoded
from fleetpulse.process.batch import process_records
from fleetpulse.process.chain import build_chain
from fleetpulse.process.state import VehicleState
from fleetpulse.queue.sqlite import SqliteQueue
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.sqlite import SqliteStore

# Records per request body and per queue row: the load benchmark sends batches of 1000.
QUEUE_ROW_RECORDS = 1000
# Publishes in flight at once: the load benchmark's 8 connections.
ENQUEUE_CONCURRENCY = 8
SEED = 7
STAGE_NAMES = ("decode", "validate", "enqueue", "fetch", "process", "store", "serial", "overlap")


class StageCost(msgspec.Struct):
    """The time one stage took for ``records`` records: wall and CPU of this process."""

    name: str
    records: int
    wall_s: float
    cpu_s: float


def build_wire_records(vehicles: int, count: int, end_ms: int) -> list[BenchRecord]:
    """Build ``count`` records of ``vehicles`` vehicles, in device-time order per vehicle."""
    rng = random.Random(SEED)
    fleet = [new_vehicle(f"veh-{number:05d}", rng) for number in range(vehicles)]
    seconds = -(-count // vehicles)
    first_ms = end_ms - seconds * 1000
    records: list[BenchRecord] = []
    for second in range(seconds):
        ts_ms = first_ms + second * 1000
        for vehicle in fleet:
            records.append(
                BenchRecord(
                    device_id=vehicle.device_id,
                    ts=ts_ms,
                    lat=round(vehicle.lat, 6),
                    lon=round(vehicle.lon, 6),
                    speed_kmh=round(vehicle.speed_kmh, 1),
                    heading_deg=round(vehicle.heading_deg, 1),
                    ignition=True,
                    odometer_m=round(vehicle.odometer_m, 1),
                    fuel_pct=round(vehicle.fuel_pct, 2),
                    battery_v=13.8,
                )
            )
            vehicle.advance_1s(rng)
    return records[:count]


def encode_bodies(records: list[BenchRecord], batch: int) -> list[bytes]:
    """Encode ``records`` as JSON array bodies of ``batch`` records, as the load sends them."""
    encoder = msgspec.json.Encoder()
    return [
        encoder.encode(records[start : start + batch]) for start in range(0, len(records), batch)
    ]


def time_stage(
    name: str, records: int, run: Callable[[], None], profile: bool, quiet: bool = False
) -> StageCost:
    """Run one stage, print its rate unless ``quiet``, and return its cost."""
    profiler = cProfile.Profile() if profile else None
    started = (time.perf_counter(), time.process_time())
    if profiler is not None:
        profiler.enable()
    run()
    return _finish_stage(name, records, started, profiler, quiet)


async def time_stage_async(
    name: str,
    records: int,
    run: Callable[[], Awaitable[None]],
    profile: bool,
    quiet: bool = False,
) -> StageCost:
    """Await one stage on the running event loop, as ``time_stage`` runs a plain one."""
    profiler = cProfile.Profile() if profile else None
    started = (time.perf_counter(), time.process_time())
    if profiler is not None:
        profiler.enable()
    await run()
    return _finish_stage(name, records, started, profiler, quiet)


def _finish_stage(
    name: str,
    records: int,
    started: tuple[float, float],
    profiler: cProfile.Profile | None,
    quiet: bool,
) -> StageCost:
    if profiler is not None:
        profiler.disable()
    elapsed_s = time.perf_counter() - started[0]
    cpu_s = time.process_time() - started[1]
    if not quiet:
        print(
            f"{name:<8} {elapsed_s:7.2f} s  {records / elapsed_s:>10,.0f} records/s"
            f"  wall {elapsed_s / records * 1e6:5.1f} us/record"
            f"  CPU {cpu_s / records * 1e6:5.1f} us/record",
            flush=True,
        )
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    return StageCost(name=name, records=records, wall_s=elapsed_s, cpu_s=cpu_s)


def measure_stages(
    record_count: int, vehicles: int, batch: int, profile: str | None = None, quiet: bool = False
) -> list[StageCost]:
    """Time every stage of ``STAGE_NAMES`` on ``record_count`` records; return the costs."""
    settings = Settings()
    end_ms = time.time_ns() // 1_000_000
    bodies = encode_bodies(build_wire_records(vehicles, record_count, end_ms), QUEUE_ROW_RECORDS)
    costs: list[StageCost] = []

    def stage(name: str, run: Callable[[], None]) -> None:
        costs.append(time_stage(name, record_count, run, profile == name, quiet))

    body_decoder = msgspec.json.Decoder(list[RecordIn])
    decoded: list[list[RecordIn]] = []
    stage("decode", lambda: decoded.extend(body_decoder.decode(body) for body in bodies))

    validated: list[list[Record]] = []

    def validate() -> None:
        for chunk in decoded:
            validated.append(validate_decoded(chunk, end_ms, settings).records)

    stage("validate", validate)
    accepted = sum(len(chunk) for chunk in validated)
    if accepted != record_count:
        raise RuntimeError(
            f"validation accepted {accepted} of {record_count} records; the generated "
            "records no longer fit the server's checks, so fix build_wire_records"
        )

    fetched: list[Record] = []
    with tempfile.TemporaryDirectory(prefix="fleetpulse-stages-") as data_dir:
        queue = SqliteQueue(_settings_in(settings, data_dir))
        costs.extend(
            asyncio.run(_time_queue_stages(queue, validated, fetched, record_count, profile, quiet))
        )

    if len(fetched) != record_count:
        raise RuntimeError(f"the queue returned {len(fetched)} of {record_count} records")

    chain = build_chain(settings)
    states: dict[str, VehicleState] = {}
    batches: list[ProcessedBatch] = []

    def process() -> None:
        for start in range(0, len(fetched), batch):
            chunk = fetched[start : start + batch]
            batches.append(process_records(states, chunk, settings, end_ms, chain))

    stage("process", process)

    with tempfile.TemporaryDirectory(prefix="fleetpulse-stages-") as data_dir:
        store = SqliteStore(_settings_in(settings, data_dir))

        async def write_all() -> None:
            await store.start()
            try:
                for processed in batches:
                    await store.write(processed)
            finally:
                await store.close()

        stage("store", lambda: asyncio.run(write_all()))

    for overlap in (False, True):
        with tempfile.TemporaryDirectory(prefix="fleetpulse-stages-") as data_dir:
            settings_here = _settings_in(settings, data_dir)
            run = partial(
                asyncio.run, process_and_store(settings_here, fetched, batch, end_ms, overlap)
            )
            costs.append(
                time_stage("overlap" if overlap else "serial", record_count, run, False, quiet)
            )
    return costs


def _settings_in(settings: Settings, data_dir: str) -> Settings:
    server = msgspec.structs.replace(settings.server, data_dir=data_dir)
    return msgspec.structs.replace(settings, server=server)


async def _time_queue_stages(
    queue: SqliteQueue,
    rows: list[list[Record]],
    fetched: list[Record],
    record_count: int,
    profile: str | None,
    quiet: bool,
) -> list[StageCost]:
    """Time ``enqueue`` of ``rows`` and ``fetch`` of them into ``fetched`` on a fresh queue."""

    async def publish_all() -> None:
        for start in range(0, len(rows), ENQUEUE_CONCURRENCY):
            window = rows[start : start + ENQUEUE_CONCURRENCY]
            await asyncio.gather(*(queue.publish(row) for row in window))

    async def fetch_all() -> None:
        while deliveries := await queue.fetch(QueueSettings().fetch_max_records, 0.0):
            for delivery in deliveries:
                fetched.extend(delivery.records)

    await queue.start()
    try:
        return [
            await time_stage_async(
                "enqueue", record_count, publish_all, profile == "enqueue", quiet
            ),
            await time_stage_async("fetch", record_count, fetch_all, profile == "fetch", quiet),
        ]
    finally:
        await queue.close()


def main(argv: list[str] | None = None) -> int:
    """Run the stages from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, help="records in all")
    parser.add_argument("--vehicles", type=int, default=1000, help="vehicles in the fleet")
    parser.add_argument(
        "--batch", type=int, default=QueueSettings().fetch_max_records,
        help="records per processed batch (default: the queue.fetch_max_records default)",
    )
    parser.add_argument(
        "--profile", choices=STAGE_NAMES[:6], help="print a cProfile of one stage"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the costs as JSON to FILE")
    args = parser.parse_args(argv)
    if args.records < QUEUE_ROW_RECORDS or args.vehicles < 1 or args.batch < 1:
        parser.error(
            f"--records must be at least {QUEUE_ROW_RECORDS}, --vehicles and --batch at least 1"
        )

    costs = measure_stages(args.records, args.vehicles, args.batch, args.profile)
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(costs)))
    return 0


async def process_and_store(
    settings: Settings, records: list[Record], batch_size: int, now_ms: int, overlap: bool
) -> None:
    """Process and store ``records`` as the processor does, with or without overlap.

    With ``overlap`` a batch is processed in a worker thread while the previous one is
    written, as ``Processor`` does. Without it each batch is processed, then written.
    """
    store = SqliteStore(settings)
    chain = build_chain(settings)
    states: dict[str, VehicleState] = {}
    await store.start()
    try:
        writing: asyncio.Task[None] | None = None
        for start in range(0, len(records), batch_size):
            chunk = records[start : start + batch_size]
            batch = await asyncio.to_thread(process_records, states, chunk, settings, now_ms, chain)
            if writing is not None:
                await writing
            writing = asyncio.create_task(store.write(batch))
            if not overlap:
                await writing
        if writing is not None:
            await writing
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(main())
