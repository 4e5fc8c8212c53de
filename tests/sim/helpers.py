"""Running a fleet in memory for the simulator's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleetpulse.sim.fleet import Fleet
from fleetpulse.sim.options import BehaviourRates, SimulationOptions
from fleetpulse.sim.truth import TruthEntry, TruthLog
from fleetpulse.sim.wire import DeviceRecord

# 2023-11-14T22:13:20Z: a fixed device time for simulated second 0.
START_MS = 1_700_000_000_000

# Every behaviour at every opportunity, and frequent device faults.
FORCED = BehaviourRates(
    highway_trip=0.6,
    speeding=1.0,
    harsh_braking=1.0,
    harsh_acceleration=1.0,
    engine_fault=0.3,
    overheat_share=0.5,
    low_fuel=0.5,
    fuel_theft=0.5,
    long_idle=0.3,
    outage_per_hour=3.0,
    gps_jump_per_hour=4.0,
)


@dataclass
class FleetRun:
    """The output of one in-memory run: ticks as yielded, good records per device, truth."""

    ticks: list[tuple[float, list[Any]]]
    truth: list[TruthEntry]
    by_device: dict[str, list[DeviceRecord]] = field(default_factory=dict)
    bad: list[dict[str, Any]] = field(default_factory=list)
    records_generated: int = 0


def ts_ms(record: DeviceRecord) -> int:
    if isinstance(record.ts, int):
        return record.ts
    return round(datetime.fromisoformat(record.ts).timestamp() * 1000)


def run_fleet(options: SimulationOptions, start_ms: int = START_MS) -> FleetRun:
    log = TruthLog(None, keep=True)
    fleet = Fleet(options, start_ms, log)
    ticks = [(tick_s, list(records)) for tick_s, records in fleet.ticks()]
    run = FleetRun(ticks, log.entries, records_generated=fleet.records_generated)
    seen: set[int] = set()
    for _, records in ticks:
        for record in records:
            if isinstance(record, dict):
                run.bad.append(record)
            elif id(record) not in seen:
                # A duplicate is the same object sent twice, so keep the first sending.
                seen.add(id(record))
                run.by_device.setdefault(record.device_id, []).append(record)
    for records in run.by_device.values():
        records.sort(key=ts_ms)
    return run
