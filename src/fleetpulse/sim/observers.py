"""Episodes found in the records a device reports: speeding, overheat, low fuel, idling, trips.

These are recorded from the values the server will see, whatever caused them, so the
truth stays right when an injected episode is cut short or ordinary driving crosses a
threshold. Thresholds are the server's default detector settings, compared as the
server compares them:

- speeding: above ``overspeed_limit_kmh``;
- overheat: above ``coolant_overheat_c``, until below ``coolant_recover_c``;
- low fuel: at or below ``low_fuel_pct``, until back at ``low_fuel_recover_pct``;
- idling: ignition on and stopped for at least ``idle_after_s``;
- trips: from the first record driving with the ignition on to ignition off, with the
  odometer distance and the stops driven on from as ``idle_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetpulse.config import DetectorSettings
from fleetpulse.model import vocabulary
from fleetpulse.sim import truth
from fleetpulse.sim.truth import TruthEntry, TruthLog


@dataclass(slots=True)
class _Open:
    start_ms: int
    last_ms: int
    peak: float
    start_odometer_m: float = 0.0
    # Trips only: when the vehicle last stopped, and the stops it drove on from (s).
    stopped_ms: int | None = None
    idle_s: float = 0.0


class RecordObservers:
    """Open and close threshold episodes of one device, record by record."""

    def __init__(self, device_id: str, log: TruthLog, detectors: DetectorSettings) -> None:
        self.device_id = device_id
        self.log = log
        self.detectors = detectors
        self._speeding: _Open | None = None
        self._overheat: _Open | None = None
        self._low_fuel: _Open | None = None
        self._idling: _Open | None = None
        self._trip: _Open | None = None
        self._last_ms = 0
        self._last_odometer_m = 0.0

    def observe(
        self,
        ts_ms: int,
        speed_kmh: float,
        ignition: bool,
        coolant_c: float,
        fuel_pct: float,
        odometer_m: float,
    ) -> None:
        """Feed one good record's values, in time order."""
        self._last_ms = ts_ms
        self._last_odometer_m = odometer_m
        self._observe_speeding(ts_ms, speed_kmh)
        self._observe_overheat(ts_ms, coolant_c)
        self._observe_low_fuel(ts_ms, fuel_pct)
        self._observe_idling(ts_ms, speed_kmh, ignition)
        self._observe_trip(ts_ms, speed_kmh, ignition, odometer_m)

    def finish(self) -> None:
        """Record the episodes still open at the end of the run as incomplete."""
        end_ms = self._last_ms
        if self._speeding is not None:
            self._close_speeding(complete=False)
        if self._overheat is not None:
            values = {"max_coolant_c": self._overheat.peak}
            event = vocabulary.ENGINE_OVERHEAT
            self._add(truth.ENGINE_OVERHEAT, self._overheat, end_ms, event, values, False)
        if self._low_fuel is not None:
            values = {"min_fuel_pct": self._low_fuel.peak}
            self._add(truth.LOW_FUEL, self._low_fuel, end_ms, vocabulary.LOW_FUEL, values, False)
        if self._idling is not None:
            self._close_idling(end_ms, complete=False)
        if self._trip is not None:
            self._close_trip(self._last_odometer_m, complete=False)
        self._speeding = self._overheat = self._low_fuel = self._idling = self._trip = None

    def _observe_speeding(self, ts_ms: int, speed_kmh: float) -> None:
        if speed_kmh > self.detectors.overspeed_limit_kmh:
            if self._speeding is None:
                self._speeding = _Open(ts_ms, ts_ms, speed_kmh)
            self._speeding.last_ms = ts_ms
            self._speeding.peak = max(self._speeding.peak, speed_kmh)
        elif self._speeding is not None:
            self._close_speeding(complete=True)

    def _close_speeding(self, complete: bool) -> None:
        assert self._speeding is not None
        episode = self._speeding
        duration_s = (episode.last_ms - episode.start_ms) / 1000.0
        # The server reports overspeed only after the limit is exceeded this long.
        expected = duration_s >= self.detectors.overspeed_min_duration_s
        values = {
            "limit_kmh": self.detectors.overspeed_limit_kmh,
            "max_speed_kmh": episode.peak,
            "duration_s": duration_s,
        }
        event = vocabulary.OVERSPEED if expected else None
        self._add(truth.SPEEDING, episode, episode.last_ms, event, values, complete)
        self._speeding = None

    def _observe_overheat(self, ts_ms: int, coolant_c: float) -> None:
        episode = self._overheat
        if episode is None:
            if coolant_c > self.detectors.coolant_overheat_c:
                self._overheat = _Open(ts_ms, ts_ms, coolant_c)
            return
        episode.peak = max(episode.peak, coolant_c)
        if coolant_c < self.detectors.coolant_recover_c:
            values = {"max_coolant_c": episode.peak}
            self._add(truth.ENGINE_OVERHEAT, episode, ts_ms, vocabulary.ENGINE_OVERHEAT, values)
            self._overheat = None

    def _observe_low_fuel(self, ts_ms: int, fuel_pct: float) -> None:
        episode = self._low_fuel
        if episode is None:
            if fuel_pct <= self.detectors.low_fuel_pct:
                self._low_fuel = _Open(ts_ms, ts_ms, fuel_pct)
            return
        episode.peak = min(episode.peak, fuel_pct)
        if fuel_pct >= self.detectors.low_fuel_recover_pct:
            values = {"min_fuel_pct": episode.peak}
            self._add(truth.LOW_FUEL, episode, ts_ms, vocabulary.LOW_FUEL, values)
            self._low_fuel = None

    def _observe_idling(self, ts_ms: int, speed_kmh: float, ignition: bool) -> None:
        if ignition and speed_kmh == 0.0:
            if self._idling is None:
                self._idling = _Open(ts_ms, ts_ms, 0.0)
            self._idling.last_ms = ts_ms
        elif self._idling is not None:
            self._close_idling(ts_ms, complete=True)

    def _close_idling(self, end_ms: int, complete: bool) -> None:
        assert self._idling is not None
        episode = self._idling
        self._idling = None
        duration_s = (end_ms - episode.start_ms) / 1000.0
        # Shorter idles (lights, warm-up) are ordinary and not ground truth.
        if duration_s >= self.detectors.idle_after_s:
            values = {"duration_s": duration_s}
            self._add(truth.IDLING, episode, end_ms, vocabulary.IDLING, values, complete)

    def _observe_trip(
        self, ts_ms: int, speed_kmh: float, ignition: bool, odometer_m: float
    ) -> None:
        if self._trip is None:
            if ignition and speed_kmh > 0.0:
                self._trip = _Open(ts_ms, ts_ms, speed_kmh, start_odometer_m=odometer_m)
            return
        trip = self._trip
        if speed_kmh > 0.0:
            trip.last_ms = ts_ms
            trip.peak = max(trip.peak, speed_kmh)
            if trip.stopped_ms is not None:
                trip.idle_s += (ts_ms - trip.stopped_ms) / 1000.0
                trip.stopped_ms = None
        elif trip.stopped_ms is None:
            trip.stopped_ms = ts_ms
        if not ignition:
            self._close_trip(odometer_m, complete=True)

    def _close_trip(self, odometer_m: float, complete: bool) -> None:
        assert self._trip is not None
        episode = self._trip
        self._trip = None
        values = {
            "distance_m": round(odometer_m - episode.start_odometer_m, 1),
            "max_speed_kmh": episode.peak,
            "idle_s": episode.idle_s,
        }
        self._add(truth.TRIP, episode, episode.last_ms, None, values, complete)

    def _add(
        self,
        kind: str,
        episode: _Open,
        end_ms: int,
        event: str | None,
        values: dict[str, float],
        complete: bool = True,
    ) -> None:
        entry = TruthEntry(kind, self.device_id, episode.start_ms, end_ms, event, complete, values)
        self.log.add(entry)
