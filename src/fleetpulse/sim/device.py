"""The telematics device in a vehicle: GPS noise, record building and device faults.

Faults injected here: GPS jumps, uplink outages (records buffered, then sent in one
burst), duplicate sends and bad records. Each is written to the truth log.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from fleetpulse.config import DetectorSettings
from fleetpulse.model import vocabulary
from fleetpulse.sim import engine, truth
from fleetpulse.sim.badrecords import make_bad_record
from fleetpulse.sim.geo import LocalFrame
from fleetpulse.sim.observers import RecordObservers
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.truth import TruthEntry, TruthLog
from fleetpulse.sim.vehicle import Phase, Vehicle
from fleetpulse.sim.wire import DeviceRecord

# GPS error: a few metres that wander slowly (first-order autoregressive, per axis).
# The standard deviation is DeviceFaults.gps_sigma_m, 2 m by default.
GPS_TAU_S = 10.0
# The extra wander of a parked receiver (DeviceFaults.parked_drift_m) changes over minutes.
PARKED_DRIFT_TAU_S = 120.0
ACCURACY_M = (3.0, 6.0)
ALTITUDE_BASE_M = 520.0
ALTITUDE_SIGMA_M = 1.5
COOLANT_SIGMA_C = 0.2
BATTERY_SIGMA_V = 0.03
# Fuel sloshes in the tank while driving, but a parked gauge is steady.
FUEL_SLOSH_SIGMA_PCT = 0.15
RPM_SIGMA = 15.0
OUTAGE_S = (30.0, 300.0)
GPS_JUMP_M = (2000.0, 5000.0)
# Share of devices that send RFC 3339 timestamps instead of epoch milliseconds.
TEXT_TS_SHARE = 0.25
TEXT_TS_OFFSETS_H = (0, 1, 2, -5)


class Device:
    """Builder of one vehicle's records. All randomness comes from the device's ``rng``.

    The vehicle's own generator drives its motion, so the injected device faults
    (bad records, duplicates) never change a vehicle's trajectory.
    """

    def __init__(
        self,
        vehicle: Vehicle,
        frame: LocalFrame,
        rng: random.Random,
        options: SimulationOptions,
        truth_log: TruthLog,
        future_ms: int,
    ) -> None:
        self.device_id = vehicle.device_id
        self.vehicle = vehicle
        self.frame = frame
        self.rng = rng
        self.options = options
        self.truth = truth_log
        self.future_ms = future_ms
        self.detectors = DetectorSettings()
        self.observers = RecordObservers(self.device_id, truth_log, self.detectors)

        faults = options.faults
        self.faults = faults
        interval_s = options.record_interval_s
        self._interval_s = interval_s
        self._noise_keep = math.exp(-interval_s / GPS_TAU_S)
        self._noise_step_m = faults.gps_sigma_m * math.sqrt(1.0 - self._noise_keep**2)
        self._noise_x_m = rng.gauss(0.0, faults.gps_sigma_m)
        self._noise_y_m = rng.gauss(0.0, faults.gps_sigma_m)
        self._drift_keep = math.exp(-interval_s / PARKED_DRIFT_TAU_S)
        self._drift_step_m = faults.parked_drift_m * math.sqrt(1.0 - self._drift_keep**2)
        self._drift_x_m = 0.0
        self._drift_y_m = 0.0
        self._outage_chance = options.behaviours.outage_per_hour * interval_s / 3600.0
        self._jump_chance = options.behaviours.gps_jump_per_hour * interval_s / 3600.0
        self._ts_zone: timezone | None = None
        if rng.random() < TEXT_TS_SHARE:
            self._ts_zone = timezone(timedelta(hours=rng.choice(TEXT_TS_OFFSETS_H)))

        self._outage_until_ms: int | None = None
        self._buffer: list[DeviceRecord] = []
        self._resend: DeviceRecord | None = None
        self._records = 0
        self.generated = 0
        # The faults of DeviceFaults draw from their own generator, so switching one on
        # changes nothing else in the records and the truth.
        self._fault_rng = random.Random(f"{options.seed}/faults/{self.device_id}")
        self.clock_offset_ms = 0
        if faults.clock_skew_max_s > 0:
            offset_s = self._fault_rng.uniform(-1.0, 1.0) * faults.clock_skew_max_s
            self.clock_offset_ms = round(offset_s * 1000)
            values = {"offset_ms": self.clock_offset_ms}
            self._add_truth(truth.CLOCK_SKEW, 0, 0, None, values)

    def emit(self, ts_ms: int) -> list[Any]:
        """Return what the device sends at ``ts_ms``: nothing during an outage, else the
        new record, after any burst of buffered records or resent duplicate, and maybe
        followed by a bad record."""
        record = self._build(ts_ms)
        self.generated += 1
        self._records += 1
        if self._outage_until_ms is not None:
            return self._during_outage(ts_ms, record)
        if self._records > 1 and self.rng.random() < self._outage_chance:
            duration_s = self.rng.uniform(*OUTAGE_S)
            self._outage_until_ms = ts_ms + round(duration_s * 1000)
            self._buffer.append(record)
            return []

        out = self._take_resend()
        out.append(record)
        if self.rng.random() < self.options.duplicate_share:
            self._resend = record
            self._add_truth(truth.DUPLICATE, ts_ms, ts_ms, None, {})
        if self.rng.random() < self.options.bad_share:
            out.append(self._bad_copy(ts_ms, record))
        return out

    def flush(self) -> list[Any]:
        """Return records still held at the end of the run: a duplicate, an outage's buffer."""
        out = self._take_resend()
        if self._buffer:
            out.extend(self._close_outage(self._buffer[-1], complete=False))
        self.observers.finish()
        return out

    def _take_resend(self) -> list[Any]:
        # A device resends an unacknowledged record before its newer ones.
        if self._resend is None:
            return []
        resend = self._resend
        self._resend = None
        return [resend]

    def _during_outage(self, ts_ms: int, record: DeviceRecord) -> list[Any]:
        assert self._outage_until_ms is not None
        if ts_ms < self._outage_until_ms:
            self._buffer.append(record)
            return []
        # The uplink is back: the buffered records go out in one burst with the new one.
        burst = self._close_outage(record, complete=True)
        if self.faults.bursts_newest_first:
            return [*self._take_resend(), record, *reversed(burst)]
        return [*self._take_resend(), *burst, record]

    def _close_outage(self, sent_with: DeviceRecord, complete: bool) -> list[DeviceRecord]:
        burst = self._buffer
        self._buffer = []
        self._outage_until_ms = None
        start_ms = self._ts_ms(burst[0])
        end_ms = self._ts_ms(burst[-1])
        values = {"buffered_records": len(burst), "sent_at_ms": self._ts_ms(sent_with)}
        self._add_truth(truth.OUTAGE, start_ms, end_ms, None, values, complete)
        return burst

    def _build(self, ts_ms: int) -> DeviceRecord:
        vehicle = self.vehicle
        rng = self.rng
        self._noise_x_m = self._noise_keep * self._noise_x_m + rng.gauss(0.0, self._noise_step_m)
        self._noise_y_m = self._noise_keep * self._noise_y_m + rng.gauss(0.0, self._noise_step_m)
        x_m = vehicle.x_m + self._noise_x_m
        y_m = vehicle.y_m + self._noise_y_m
        if self._drift_step_m > 0:
            x_m, y_m = self._add_parked_drift(x_m, y_m)
        if self._records > 0 and rng.random() < self._jump_chance:
            x_m, y_m = self._jump(ts_ms, x_m, y_m)
        lat, lon = self.frame.to_lat_lon(x_m, y_m)

        moving = vehicle.speed_ms > 0.0
        slosh = rng.gauss(0.0, FUEL_SLOSH_SIGMA_PCT) if moving else 0.0
        rpm = engine.engine_rpm(vehicle.ignition, vehicle.speed_ms, vehicle.accel_mps2)
        if rpm > 0:
            rpm = max(0.0, rpm + rng.gauss(0.0, RPM_SIGMA))
        battery_v = engine.battery_v(vehicle.ignition, vehicle.profile.battery_offset_v)
        altitude_m = _altitude_m(vehicle.x_m, vehicle.y_m) + rng.gauss(0.0, ALTITUDE_SIGMA_M)
        speed_kmh = round(vehicle.speed_ms * 3.6, 1)
        coolant_c = round(vehicle.coolant_c + rng.gauss(0.0, COOLANT_SIGMA_C), 1)
        fuel_pct = round(min(100.0, max(0.0, vehicle.fuel_pct + slosh)), 1)
        odometer_m = round(vehicle.odometer_m, 1)
        sent_odometer_m = odometer_m
        zero_share = self.faults.odometer_zero_share
        if zero_share > 0 and self._fault_rng.random() < zero_share:
            sent_odometer_m = 0.0
            self._add_truth(truth.ODOMETER_GLITCH, ts_ms, ts_ms, None, {"odometer_m": 0.0})
        record = DeviceRecord(
            device_id=self.device_id,
            ts=self._format_ts(ts_ms),
            lat=round(lat, 7),
            lon=round(lon, 7),
            speed_kmh=speed_kmh,
            heading_deg=round(vehicle.heading_deg, 1),
            altitude_m=round(altitude_m, 1),
            accuracy_m=round(rng.uniform(*ACCURACY_M), 1),
            ignition=vehicle.ignition,
            engine_rpm=round(rpm),
            coolant_c=coolant_c,
            fuel_pct=fuel_pct,
            battery_v=round(battery_v + rng.gauss(0.0, BATTERY_SIGMA_V), 2),
            odometer_m=sent_odometer_m,
            dtc=list(vehicle.dtc) if vehicle.dtc else None,
        )
        self.observers.observe(ts_ms, speed_kmh, vehicle.ignition, coolant_c, fuel_pct, odometer_m)
        return record

    def _add_parked_drift(self, x_m: float, y_m: float) -> tuple[float, float]:
        # The wander builds up from 0 at each park, so parking causes no hop.
        if self.vehicle.phase is not Phase.PARKED:
            self._drift_x_m = self._drift_y_m = 0.0
            return x_m, y_m
        keep = self._drift_keep
        draw = self._fault_rng.gauss
        self._drift_x_m = keep * self._drift_x_m + draw(0.0, self._drift_step_m)
        self._drift_y_m = keep * self._drift_y_m + draw(0.0, self._drift_step_m)
        return x_m + self._drift_x_m, y_m + self._drift_y_m

    def _jump(self, ts_ms: int, x_m: float, y_m: float) -> tuple[float, float]:
        distance_m = self.rng.uniform(*GPS_JUMP_M)
        bearing = self.rng.uniform(0.0, 2 * math.pi)
        x_m += distance_m * math.sin(bearing)
        y_m += distance_m * math.cos(bearing)
        implied_kmh = distance_m / self._interval_s * 3.6
        # The server flags a jump only when the implied speed exceeds its threshold.
        detectable = implied_kmh > self.detectors.gps_jump_speed_kmh
        values = {"distance_m": round(distance_m, 1), "implied_speed_kmh": round(implied_kmh)}
        event = vocabulary.GPS_JUMP if detectable else None
        self._add_truth(truth.GPS_JUMP, ts_ms, ts_ms, event, values)
        return x_m, y_m

    def _bad_copy(self, ts_ms: int, good: DeviceRecord) -> dict[str, Any]:
        bad, kind, reason = make_bad_record(good, self.rng, self.future_ms)
        self._add_truth(truth.BAD_RECORD, ts_ms, ts_ms, None, {"kind": kind, "reason": reason})
        return bad

    def _format_ts(self, ts_ms: int) -> int | str:
        if self._ts_zone is None:
            return ts_ms
        moment = datetime.fromtimestamp(ts_ms / 1000, self._ts_zone)
        return moment.isoformat(timespec="milliseconds")

    def _ts_ms(self, record: DeviceRecord) -> int:
        if isinstance(record.ts, int):
            return record.ts
        return round(datetime.fromisoformat(record.ts).timestamp() * 1000)

    def _add_truth(
        self,
        kind: str,
        start_ms: int,
        end_ms: int,
        event: str | None,
        values: dict[str, Any],
        complete: bool = True,
    ) -> None:
        entry = TruthEntry(kind, self.device_id, start_ms, end_ms, event, complete, values)
        self.truth.add(entry)


def _altitude_m(x_m: float, y_m: float) -> float:
    # Gentle hills: +-20 m over a few kilometres.
    return ALTITUDE_BASE_M + 12.0 * math.sin(x_m / 1700.0) + 8.0 * math.cos(y_m / 2300.0)
