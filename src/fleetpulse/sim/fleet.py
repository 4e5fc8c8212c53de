"""A fleet of simulated vehicles and their devices, advanced tick by tick.

Vehicle ``i`` draws from ``random.Random(f"{seed}/vehicle/{i}")`` and its device from
``random.Random(f"{seed}/device/{i}")``, so a seed and a start time give the same records
on every run, whatever the batching or pacing of the sender.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from fleetpulse.sim.badrecords import FUTURE_MARGIN_MS
from fleetpulse.sim.device import Device
from fleetpulse.sim.geo import LocalFrame
from fleetpulse.sim.network import build_network
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.truth import TruthLog
from fleetpulse.sim.vehicle import Vehicle


class Fleet:
    """All vehicles of a run. ``start_ms`` is the device time of simulated second 0.

    ``future_ms`` is the timestamp given to bad records that must be in the future when
    sent. It defaults to one day after the simulated timeline ends.
    """

    def __init__(
        self,
        options: SimulationOptions,
        start_ms: int,
        truth_log: TruthLog,
        future_ms: int | None = None,
    ) -> None:
        self.options = options
        self.start_ms = start_ms
        if future_ms is None:
            future_ms = start_ms + round(options.duration_s * 1000) + FUTURE_MARGIN_MS
        network = build_network()
        frame = LocalFrame(options.centre_lat, options.centre_lon)
        self.devices: list[Device] = []
        for index in range(options.vehicles):
            device_id = f"{options.device_prefix}{index + 1:04d}"
            vehicle = Vehicle(
                device_id,
                network,
                random.Random(f"{options.seed}/vehicle/{index}"),
                options.behaviours,
                truth_log,
                options.record_interval_s,
            )
            device_rng = random.Random(f"{options.seed}/device/{index}")
            self.devices.append(Device(vehicle, frame, device_rng, options, truth_log, future_ms))
        self.last_ts_ms = start_ms

    @property
    def records_generated(self) -> int:
        """Good records built by the devices so far, buffered ones included."""
        return sum(device.generated for device in self.devices)

    def ticks(self) -> Iterator[tuple[float, list[Any]]]:
        """Yield (simulated second, records to send then) for each record interval.

        A last tick at the final second carries what devices still held at the end (an
        outage's buffer, a pending duplicate). Episodes still running then are written
        to the truth log as incomplete.
        """
        interval_s = self.options.record_interval_s
        sim_s = 0.0
        for tick in range(self.options.ticks):
            sim_s = tick * interval_s
            ts_ms = self.start_ms + round(sim_s * 1000)
            self.last_ts_ms = ts_ms
            records: list[Any] = []
            for device in self.devices:
                vehicle = device.vehicle
                if tick > 0:
                    vehicle.advance_record_interval()
                # Device time: the truth is in the time each device stamps, skew included.
                device_ts_ms = ts_ms + device.clock_offset_ms
                vehicle.on_record(device_ts_ms)
                records.extend(device.emit(device_ts_ms))
            yield sim_s, records

        for device in self.devices:
            device.vehicle.finish(self.last_ts_ms + device.clock_offset_ms)
        tail = [record for device in self.devices for record in device.flush()]
        if tail:
            yield sim_s, tail
