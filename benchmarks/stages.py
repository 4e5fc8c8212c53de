"""Per-record cost of each stage behind ingest, without HTTP: queue decode, process, store.

Builds the records of the load benchmark's fleet (one record per vehicle per second),
then times, in this one process and one thread at a time:

- ``decode``: msgpack decoding of queue rows back into ``Record`` lists, as a fetch does;
- ``process``: ``process_records`` over batches of ``--batch`` records;
- ``store``: ``SqliteStore.write`` of the processed batches into a fresh ``store.db``
  (``store.synchronous`` as configured, "full" by default), awaited one after another;
- ``serial`` and ``overlap``: processing and storing together on a fresh store, in a
  worker thread and the store's writer thread as the processor runs them. ``serial``
  processes and writes one batch after the other, and ``overlap`` processes a batch
  while the previous one is written.

    .venv/bin/python benchmarks/stages.py --records 200000 --batch 5000
    .venv/bin/python benchmarks/stages.py --profile process    # cProfile of one stage

Each stage prints its wall time and the CPU time of this process (all threads, so the
store's writer thread counts) per record. A loaded machine inflates the wall time much
more than the CPU time: compare runs made back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial

import msgspec

from fleet_payloads import BenchRecord, new_vehicle
from fleetpulse.config import QueueSettings, Settings
from fleetpulse.model.record import Record
from fleetpulse.process.batch import process_records
from fleetpulse.process.chain import build_chain
from fleetpulse.process.state import VehicleState
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.sqlite import SqliteStore

# Rows of the queue hold one HTTP request each: the load benchmark sends 1000 records.
QUEUE_ROW_RECORDS = 1000
SEED = 7


def build_records(vehicles: int, count: int, end_ms: int) -> list[Record]:
    """Build ``count`` records of ``vehicles`` vehicles, in device-time order per vehicle."""
    import random

    rng = random.Random(SEED)
    fleet = [new_vehicle(f"veh-{number:05d}", rng) for number in range(vehicles)]
    seconds = -(-count // vehicles)
    first_ms = end_ms - seconds * 1000
    records: list[Record] = []
    for second in range(seconds):
        ts_ms = first_ms + second * 1000
        for vehicle in fleet:
            wire = BenchRecord(
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
            records.append(
                Record(
                    device_id=wire.device_id,
                    ts_ms=wire.ts,
                    lat=wire.lat,
                    lon=wire.lon,
                    received_at_ms=end_ms,
                    speed_kmh=wire.speed_kmh,
                    heading_deg=wire.heading_deg,
                    ignition=wire.ignition,
                    odometer_m=wire.odometer_m,
                    fuel_pct=wire.fuel_pct,
                    battery_v=wire.battery_v,
                )
            )
            vehicle.advance_1s(rng)
    return records[:count]


def time_stage(name: str, records: int, run: Callable[[], None], profile: bool) -> float:
    """Run one stage, print its rate and return the seconds it took."""
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    cpu_started = time.process_time()
    if profiler is not None:
        profiler.enable()
    run()
    if profiler is not None:
        profiler.disable()
    elapsed_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    print(
        f"{name:<8} {elapsed_s:7.2f} s  {records / elapsed_s:>10,.0f} records/s"
        f"  wall {elapsed_s / records * 1e6:5.1f} us/record"
        f"  CPU {cpu_s / records * 1e6:5.1f} us/record"
    )
    if profiler is not None:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    return elapsed_s


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
        "--profile", choices=("decode", "process", "store"), help="print a cProfile of one stage"
    )
    args = parser.parse_args(argv)

    settings = Settings()
    end_ms = time.time_ns() // 1_000_000
    records = build_records(args.vehicles, args.records, end_ms)

    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(list[Record])
    rows = [
        encoder.encode(records[start : start + QUEUE_ROW_RECORDS])
        for start in range(0, len(records), QUEUE_ROW_RECORDS)
    ]
    decoded: list[Record] = []

    def decode() -> None:
        for row in rows:
            decoded.extend(decoder.decode(row))

    time_stage("decode", len(records), decode, args.profile == "decode")

    chain = build_chain(settings)
    states: dict[str, VehicleState] = {}
    batches: list[ProcessedBatch] = []

    def process() -> None:
        for start in range(0, len(decoded), args.batch):
            chunk = decoded[start : start + args.batch]
            batches.append(process_records(states, chunk, settings, end_ms, chain))

    time_stage("process", len(records), process, args.profile == "process")

    with tempfile.TemporaryDirectory(prefix="fleetpulse-stages-") as data_dir:
        server = msgspec.structs.replace(settings.server, data_dir=data_dir)
        store = SqliteStore(msgspec.structs.replace(settings, server=server))

        async def write_all() -> None:
            await store.start()
            try:
                for batch in batches:
                    await store.write(batch)
            finally:
                await store.close()

        time_stage("store", len(records), lambda: asyncio.run(write_all()), args.profile == "store")

    for overlap in (False, True):
        name = "overlap" if overlap else "serial"
        with tempfile.TemporaryDirectory(prefix="fleetpulse-stages-") as data_dir:
            server = msgspec.structs.replace(settings.server, data_dir=data_dir)
            run = partial(
                asyncio.run,
                process_and_store(
                    msgspec.structs.replace(settings, server=server),
                    decoded, args.batch, end_ms, overlap,
                ),
            )
            time_stage(name, len(records), run, False)
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
