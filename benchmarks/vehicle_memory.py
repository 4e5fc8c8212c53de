"""Memory per tracked vehicle: the processor's in-memory state for 1k, 10k and 100k vehicles.

Runs `process_records` in this process (no server, no store) over a few records per
vehicle, so every vehicle has a full state, and reports the growth of this process's
resident memory (VmRSS from /proc/self/status) per vehicle. Linux only.

    .venv/bin/python benchmarks/vehicle_memory.py --vehicles 1000 10000 100000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.record import Record
from fleetpulse.process.batch import process_records
from fleetpulse.process.state import VehicleState

RECORDS_PER_VEHICLE = 3
BATCH_RECORDS = 5_000


def rss_kib() -> int:
    """Return this process's resident set size in KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status; this script needs Linux")


def measure(vehicles: int, settings: Settings) -> tuple[float, float]:
    """Process RECORDS_PER_VEHICLE records for each vehicle; return (MiB, KiB per vehicle)."""
    gc.collect()
    before_kib = rss_kib()
    states: dict[str, VehicleState] = {}
    now_ms = int(time.time() * 1000)
    batch: list[Record] = []
    for step in range(RECORDS_PER_VEHICLE):
        for number in range(vehicles):
            batch.append(
                Record(
                    device_id=f"veh-{number:06d}",
                    ts_ms=now_ms - (RECORDS_PER_VEHICLE - step) * 1000,
                    lat=48.1 + number * 1e-5,
                    lon=11.5 + step * 1e-4,
                    received_at_ms=now_ms,
                    speed_kmh=30.0,
                    ignition=True,
                    fuel_pct=50.0,
                    battery_v=13.9,
                )
            )
            if len(batch) >= BATCH_RECORDS:
                process_records(states, batch, settings, now_ms)
                batch = []
    if batch:
        process_records(states, batch, settings, now_ms)
    gc.collect()
    grown_kib = rss_kib() - before_kib
    assert len(states) == vehicles
    return grown_kib / 1024, grown_kib / vehicles


class VehicleMemory(msgspec.Struct):
    """The growth of this process's RSS while the processor tracked ``vehicles`` vehicles."""

    vehicles: int
    state_mib: float
    kib_per_vehicle: float


def main(argv: list[str] | None = None) -> int:
    """Measure each fleet size from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--vehicles", type=int, nargs="+", default=[1_000, 10_000, 100_000],
        help="fleet sizes to measure, each in a fresh state dict (default 1000 10000 100000)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args(argv)
    settings = Settings()
    results = []
    print(f"{'vehicles':>10} {'state MiB':>10} {'KiB/vehicle':>12}")
    for vehicles in args.vehicles:
        mib, per_vehicle = measure(vehicles, settings)
        results.append(VehicleMemory(vehicles, mib, per_vehicle))
        print(f"{vehicles:>10,} {mib:>10.1f} {per_vehicle:>12.2f}", flush=True)
    print(f"process RSS at the end: {rss_kib() / 1024:.0f} MiB", file=sys.stderr)
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
