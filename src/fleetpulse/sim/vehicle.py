"""A simulated vehicle: trips through the road network, its engine, fuel and injected episodes.

A vehicle cycles through parked (ignition off), idling (ignition on, stopped) and
driving, and starts the run in a random one of these phases. Its true state is read by
its Device, which adds GPS noise and builds records.
Physics runs in steps of at most MAX_STEP_S, and a record is taken every record interval.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from fleetpulse.config import DetectorSettings
from fleetpulse.model import vocabulary
from fleetpulse.sim import engine, truth
from fleetpulse.sim.kinematics import drive_accel_mps2, next_speed, speed_to_meet
from fleetpulse.sim.network import RoadNetwork
from fleetpulse.sim.options import BehaviourRates
from fleetpulse.sim.route import Route, build_route, plan_city_trip, plan_highway_trip
from fleetpulse.sim.truth import TruthEntry, TruthLog

# Maximum physics step. A record interval up to this long is one step.
MAX_STEP_S = 1.0
# A vehicle creeping this close to a stop line is placed on it and halts.
STOP_SNAP_M = 0.5
STOP_SNAP_MS = 0.5
# Share of lit intersections met at red, and the wait there (s).
RED_LIGHT_SHARE = 0.45
RED_WAIT_S = (8.0, 40.0)
# Ordinary idling before leaving and after arriving stays well under the server's 300 s.
WARM_UP_IDLE_S = (10.0, 60.0)
ARRIVAL_IDLE_S = (5.0, 40.0)
LONG_IDLE_S = (330.0, 720.0)
PARK_S = (120.0, 900.0)
# Fuel below this is refuelled at the next stop, so a low-fuel episode always ends.
REFUEL_BELOW_PCT = 12.0
# A pump delivers about 0.6 l/s and a siphon about 0.15 l/s.
REFUEL_L_PER_S = 0.6
THEFT_L_PER_S = 0.15
THEFT_DROP_PCT = (12.0, 25.0)
THEFT_MIN_FUEL_PCT = 35.0
# Injected episodes. Speeding targets exceed the 120 km/h limit by a clear margin.
SPEEDING_TARGET_KMH = (128.0, 150.0)
SPEEDING_HOLD_S = (15.0, 60.0)
SPEEDING_AFTER_S = 20.0
HARSH_BRAKE_MPS2 = (4.5, 6.5)
HARSH_BRAKE_S = (1.0, 2.0)
HARSH_BRAKE_MIN_KMH = 55.0
HARSH_ACCEL_MPS2 = (3.5, 4.5)
HARSH_ACCEL_S = (2.0, 3.0)
# Harsh episodes start only with this much road free of stops and slower caps ahead.
HARSH_CLEAR_M = 150.0
FAULT_CODES = ("P0300", "P0171", "P0420", "P0442", "P0128")
OVERHEAT_CODE = "P0217"
OVERHEAT_S = (150.0, 300.0)
# Shares of the fleet that start the run driving somewhere along a route and idling
# before a trip. The rest start parked, so the first minutes of a run show every phase.
START_DRIVING_SHARE = 0.5
START_IDLING_SHARE = 0.15
# A vehicle that starts mid-route has at least this far left to drive, so the trip it is
# on still passes the server's 200 m minimum trip distance.
START_MIN_LEFT_M = 500.0
# Coolant of an engine that has been running for a while before the run starts.
WARM_START_C = (80.0, 90.0)


class Phase(enum.Enum):
    PARKED = "parked"
    IDLING = "idling"
    DRIVING = "driving"


@dataclass(frozen=True, slots=True)
class Profile:
    """Vehicle and driver traits that differ across the fleet."""

    standstill_accel_mps2: float
    speed_factor: float
    tank_l: float
    l_per_100km: float
    idle_l_per_h: float
    battery_offset_v: float
    ambient_c: float


def random_profile(rng: random.Random) -> Profile:
    return Profile(
        standstill_accel_mps2=rng.uniform(1.2, 2.5),
        speed_factor=rng.uniform(0.92, 1.04),
        tank_l=rng.uniform(45.0, 70.0),
        l_per_100km=rng.uniform(6.5, 11.0),
        idle_l_per_h=rng.uniform(0.6, 1.0),
        battery_offset_v=rng.uniform(-0.15, 0.15),
        ambient_c=rng.uniform(5.0, 22.0),
    )


@dataclass(slots=True)
class _Harsh:
    kind: str
    accel_mps2: float
    steps_left: int
    start_ms: int
    from_kmh: float


@dataclass(slots=True)
class _Speeding:
    target_ms: float
    hold_s: float
    above_s: float = 0.0


@dataclass(slots=True)
class _FuelChange:
    kind: str
    start_after_s: float
    target_pct: float
    rate_pct_s: float
    start_ms: int | None = None
    from_pct: float = 0.0
    done: bool = False


@dataclass(slots=True)
class _TripPlan:
    harsh_braking: bool
    harsh_acceleration: bool
    speeding: bool


class Vehicle:
    """One vehicle of the fleet. All randomness comes from its own ``rng``."""

    def __init__(
        self,
        device_id: str,
        network: RoadNetwork,
        rng: random.Random,
        rates: BehaviourRates,
        truth_log: TruthLog,
        record_interval_s: float,
    ) -> None:
        self.device_id = device_id
        self.network = network
        self.rng = rng
        self.rates = rates
        self.truth = truth_log
        self.detectors = DetectorSettings()
        self.record_interval_s = record_interval_s
        self.steps_per_record = max(1, math.ceil(record_interval_s / MAX_STEP_S - 1e-9))
        self.step_s = record_interval_s / self.steps_per_record
        self.profile = random_profile(rng)

        self.node = rng.choice(network.grid_nodes)
        self.x_m, self.y_m = network.xy[self.node]
        self.heading_deg = rng.choice((0.0, 90.0, 180.0, 270.0))
        self.speed_ms = 0.0
        self.accel_mps2 = 0.0
        self.ignition = False
        self.odometer_m = rng.uniform(5e6, 2e8)
        low_fuel = rng.random() < rates.low_fuel
        self.fuel_pct = rng.uniform(10.3, 10.9) if low_fuel else rng.uniform(20.0, 95.0)
        self.coolant_c = rng.uniform(self.profile.ambient_c, 85.0)
        self.dtc: list[str] = []
        self.overheat_left_s = 0.0

        self.phase = Phase.PARKED
        self.phase_left_s = 0.0
        self.parked_s = 0.0
        self.route: Route | None = None
        self.route_end_node = self.node
        self.segment = 0
        self.s_m = 0.0
        self.stops: dict[int, float] = {}
        self.light_wait_s = 0.0
        self.highway_s = 0.0
        self.plan = _TripPlan(False, False, False)
        self.harsh: _Harsh | None = None
        self.speeding: _Speeding | None = None
        self.fuel_change: _FuelChange | None = None
        self.new_fault_code: str | None = None
        self._enter_start_phase()

    # The state at simulated second 0.

    def _enter_start_phase(self) -> None:
        """Put the vehicle in a random phase of its day: driving, idling or parked.

        Episodes that would already be running at second 0 (a fault code, an overheat, a
        fuel change, speeding, harsh driving) are not injected, because the records would
        miss their start. Idling, low fuel and trips are recorded from the records, so
        the ones running at second 0 are recorded from the first record.
        """
        draw = self.rng.random()
        if draw < START_DRIVING_SHARE:
            self._start_mid_route()
        elif draw < START_DRIVING_SHARE + START_IDLING_SHARE:
            self._start_warming_up()
        else:
            # Parked for a while already: the rest of one park.
            self.phase_left_s = self.rng.uniform(0.0, PARK_S[1]) * self.rates.park_scale

    def _start_warming_up(self) -> None:
        rng = self.rng
        self.ignition = True
        self._plan_trip()
        long_idle = rng.random() < self.rates.long_idle
        self.phase = Phase.IDLING
        self.phase_left_s = rng.uniform(0.0, (LONG_IDLE_S if long_idle else WARM_UP_IDLE_S)[1])

    def _start_mid_route(self) -> None:
        rng = self.rng
        self.ignition = True
        self.coolant_c = rng.uniform(*WARM_START_C)
        route = self._plan_trip()
        self.phase = Phase.DRIVING
        self.s_m = rng.uniform(0.0, max(0.0, route.length_m - START_MIN_LEFT_M))
        self.segment = route.segment_at(self.s_m)
        # The lights of the nodes already passed are behind the vehicle.
        self.stops = {node: wait_s for node, wait_s in self.stops.items() if node > self.segment}
        self.x_m, self.y_m = route.position(self.s_m, self.segment)
        self.heading_deg = route.heading_deg[self.segment]
        self._set_start_speed(route)

    def _set_start_speed(self, route: Route) -> None:
        """Set a speed the driver could have reached at ``s_m`` by ordinary driving.

        That is the speed after accelerating from the last node (from rest at the route
        start, else from its turn cap), within the limit and low enough to brake for
        every cap ahead at the planned rate.
        """
        node = self.segment
        limit_ms = self._limit_ms(node)
        entry_ms = 0.0 if node == 0 else min(route.cap_ms[node], self._limit_ms(node - 1))
        # The driver's rate is lowest at the limit, so this speed is never above what the
        # driver reaches over that distance.
        accel_mps2 = drive_accel_mps2(self.profile.standstill_accel_mps2, limit_ms)
        since_node_m = self.s_m - route.cum_m[node]
        self.speed_ms = min(limit_ms, math.sqrt(entry_ms**2 + 2.0 * accel_mps2 * since_node_m))
        # The bound ahead is computed from speed_ms, and a lower speed only raises it, so
        # one pass is enough.
        self.speed_ms = min(self.speed_ms, self._ahead_bound_ms(self.step_s))

    # Record boundaries: episodes start and end here so the truth matches record times.

    def on_record(self, ts_ms: int) -> None:
        """Start or close injected episodes at the record taken at ``ts_ms``."""
        if self.harsh is not None and self.harsh.steps_left == 0:
            self._close_harsh(ts_ms)
        if self.new_fault_code is not None:
            self._add_truth(
                truth.ENGINE_FAULT, ts_ms, ts_ms, vocabulary.DTC, {"code": self.new_fault_code}
            )
            self.new_fault_code = None
        if self.phase is Phase.PARKED:
            self._update_fuel_change(ts_ms)
        elif self.phase is Phase.DRIVING and self.light_wait_s <= 0:
            self._maybe_start_harsh(ts_ms)
            self._maybe_start_speeding()

    def finish(self, ts_ms: int) -> None:
        """Record the injected episodes still running at the last record, ``ts_ms``, as
        incomplete."""
        harsh = self.harsh
        # An episode that started at the last record has no record after its start, so
        # nothing can show it, and it counts as not injected.
        if harsh is not None and harsh.start_ms < ts_ms:
            self._close_harsh(ts_ms, complete=False)
        self.harsh = None
        change = self.fuel_change
        if change is not None and change.start_ms is not None and change.start_ms < ts_ms:
            self._close_fuel_change(change, ts_ms, complete=False)
        self.fuel_change = None

    def advance_record_interval(self) -> None:
        """Run the physics from this record to the next one."""
        for _ in range(self.steps_per_record):
            self.advance(self.step_s)

    def advance(self, dt_s: float) -> None:
        """Advance the vehicle by one physics step of ``dt_s`` seconds."""
        self.accel_mps2 = 0.0
        distance_m = 0.0
        if self.phase is Phase.PARKED:
            self._park_step(dt_s)
        elif self.phase is Phase.IDLING:
            self._idle_step(dt_s)
        else:
            distance_m = self._drive_step(dt_s)

        overheating = self.ignition and self.overheat_left_s > 0
        if overheating:
            self.overheat_left_s -= dt_s
        self.coolant_c = engine.coolant_after(
            self.coolant_c, self.ignition, overheating, self.profile.ambient_c, dt_s
        )
        used_l = engine.fuel_used_l(
            distance_m,
            self.accel_mps2,
            self.ignition,
            self.profile.l_per_100km,
            self.profile.idle_l_per_h,
            dt_s,
        )
        self.fuel_pct = max(0.0, self.fuel_pct - used_l / self.profile.tank_l * 100.0)

    # Phases.

    def _park_step(self, dt_s: float) -> None:
        self.parked_s += dt_s
        self.phase_left_s -= dt_s
        change = self.fuel_change
        if change is not None and change.start_ms is not None and not change.done:
            self.fuel_pct += change.rate_pct_s * dt_s
            if change.rate_pct_s > 0:
                reached = self.fuel_pct >= change.target_pct
            else:
                reached = self.fuel_pct <= change.target_pct
            if reached:
                self.fuel_pct = change.target_pct
                change.done = True
        # A fuel change in progress, or not yet recorded, keeps the vehicle parked.
        if self.phase_left_s <= 0 and change is None:
            self._start_trip()

    def _idle_step(self, dt_s: float) -> None:
        self.phase_left_s -= dt_s
        self.speed_ms = 0.0
        if self.phase_left_s > 0:
            return
        if self.route is not None:
            self.phase = Phase.DRIVING
        else:
            self._park()

    def _start_trip(self) -> None:
        rng = self.rng
        self.ignition = True
        self._plan_trip()
        if rng.random() < self.rates.engine_fault:
            self._inject_fault()
        long_idle = rng.random() < self.rates.long_idle
        self.phase = Phase.IDLING
        self.phase_left_s = rng.uniform(*(LONG_IDLE_S if long_idle else WARM_UP_IDLE_S))

    def _plan_trip(self) -> Route:
        """Plan a trip from ``node``: the route, its red lights and its injected episodes."""
        rng = self.rng
        highway = rng.random() < self.rates.highway_trip
        if highway:
            nodes = plan_highway_trip(self.network, self.node, rng)
        else:
            nodes = plan_city_trip(self.network, self.node, rng)
        route = build_route(self.network, nodes, self.profile.speed_factor)
        self.route = route
        self.route_end_node = nodes[-1]
        self.segment = 0
        self.s_m = 0.0
        self.stops = {
            j: rng.uniform(*RED_WAIT_S)
            for j, lit in enumerate(route.lit)
            if lit and rng.random() < RED_LIGHT_SHARE
        }
        self.plan = _TripPlan(
            harsh_braking=rng.random() < self.rates.harsh_braking,
            harsh_acceleration=rng.random() < self.rates.harsh_acceleration,
            speeding=highway and rng.random() < self.rates.speeding,
        )
        return route

    def _inject_fault(self) -> None:
        if self.rng.random() < self.rates.overheat_share:
            code = OVERHEAT_CODE
            self.overheat_left_s = self.rng.uniform(*OVERHEAT_S)
        else:
            code = self.rng.choice(FAULT_CODES)
        if code not in self.dtc:
            self.dtc.append(code)
            self.new_fault_code = code

    def _arrive(self) -> None:
        self.route = None
        self.node = self.route_end_node
        self.speed_ms = 0.0
        self.harsh = None
        self.speeding = None
        self.phase = Phase.IDLING
        self.phase_left_s = self.rng.uniform(*ARRIVAL_IDLE_S)

    def _park(self) -> None:
        rng = self.rng
        self.ignition = False
        self.phase = Phase.PARKED
        self.parked_s = 0.0
        self.phase_left_s = rng.uniform(*PARK_S) * self.rates.park_scale
        tank_l = self.profile.tank_l
        if self.fuel_pct < REFUEL_BELOW_PCT:
            target = rng.uniform(90.0, 100.0)
            rate = REFUEL_L_PER_S / tank_l * 100.0
            self.fuel_change = _FuelChange(truth.REFUEL, 30.0, target, rate)
        elif self.fuel_pct > THEFT_MIN_FUEL_PCT and rng.random() < self.rates.fuel_theft:
            target = self.fuel_pct - rng.uniform(*THEFT_DROP_PCT)
            rate = -THEFT_L_PER_S / tank_l * 100.0
            self.fuel_change = _FuelChange(truth.FUEL_THEFT, 60.0, target, rate)

    # Driving.

    def _drive_step(self, dt_s: float) -> float:
        route = self.route
        assert route is not None
        if self.light_wait_s > 0:
            self.light_wait_s -= dt_s
            self.speed_ms = 0.0
            return 0.0

        speed_ms = self.speed_ms
        limit_ms = self._limit_ms(self.segment)
        bound_ms = self._ahead_bound_ms(dt_s)
        harsh = self.harsh
        if harsh is not None and harsh.steps_left > 0:
            harsh.steps_left -= 1
            new_speed_ms = speed_ms + harsh.accel_mps2 * dt_s
            if harsh.accel_mps2 > 0:
                new_speed_ms = min(new_speed_ms, bound_ms, limit_ms)
            new_speed_ms = max(0.0, new_speed_ms)
        else:
            accel = self.profile.standstill_accel_mps2
            new_speed_ms = next_speed(speed_ms, limit_ms, bound_ms, accel, dt_s)

        s_m = self.s_m + (speed_ms + new_speed_ms) / 2 * dt_s
        stop = self._next_stop_node()
        stop_m = route.cum_m[stop]
        creeping = s_m >= stop_m - STOP_SNAP_M and new_speed_ms <= STOP_SNAP_MS
        if s_m >= stop_m or creeping:
            s_m = route.cum_m[stop]
            new_speed_ms = 0.0

        distance_m = s_m - self.s_m
        self.accel_mps2 = (new_speed_ms - speed_ms) / dt_s
        self.speed_ms = new_speed_ms
        self.s_m = s_m
        self.odometer_m += distance_m
        self.segment = route.segment_at(s_m, self.segment)
        self.x_m, self.y_m = route.position(s_m, self.segment)
        self.heading_deg = route.heading_deg[self.segment]
        self.highway_s = self.highway_s + dt_s if route.highway[self.segment] else 0.0
        self._track_speeding(dt_s)

        if s_m == route.cum_m[stop]:
            if stop == len(route.cum_m) - 1:
                self._arrive()
            else:
                self.light_wait_s = self.stops.pop(stop)
        return distance_m

    def _limit_ms(self, segment: int) -> float:
        route = self.route
        assert route is not None
        limit_ms = route.limit_ms[segment]
        if self.speeding is not None and route.highway[segment]:
            return max(limit_ms, self.speeding.target_ms)
        return limit_ms

    def _next_stop_node(self) -> int:
        route = self.route
        assert route is not None
        last = len(route.cum_m) - 1
        pending = [j for j in self.stops if j > self.segment]
        return min(pending) if pending else last

    def _ahead_bound_ms(self, dt_s: float) -> float:
        """Return the highest speed that still allows meeting every cap in reach ahead."""
        route = self.route
        assert route is not None
        speed_ms = self.speed_ms
        reach_m = speed_ms * speed_ms / 2.0 + 2 * speed_ms * dt_s + 30.0
        last = len(route.cum_m) - 1
        bound_ms = math.inf
        for j in range(self.segment + 1, last + 1):
            distance_m = route.cum_m[j] - self.s_m
            if distance_m > reach_m:
                break
            if j == last or j in self.stops:
                return min(bound_ms, speed_to_meet(speed_ms, distance_m, 0.0, dt_s))
            target_ms = min(route.cap_ms[j], self._limit_ms(j))
            if target_ms < math.inf:
                bound_ms = min(bound_ms, speed_to_meet(speed_ms, distance_m, target_ms, dt_s))
        return bound_ms

    def _clear_ahead_m(self) -> float:
        """Return the distance to the next stop or to a cap below the current speed."""
        route = self.route
        assert route is not None
        last = len(route.cum_m) - 1
        for j in range(self.segment + 1, last + 1):
            if j == last or j in self.stops:
                return route.cum_m[j] - self.s_m
            if min(route.cap_ms[j], self._limit_ms(j)) < self.speed_ms:
                return route.cum_m[j] - self.s_m
        return math.inf

    # Injected driving episodes.

    def _maybe_start_harsh(self, ts_ms: int) -> None:
        if self.harsh is not None or self._clear_ahead_m() < HARSH_CLEAR_M:
            return
        rng = self.rng
        speed_kmh = round(self.speed_ms * 3.6, 1)
        if self.plan.harsh_acceleration and self.speed_ms == 0.0:
            self.plan.harsh_acceleration = False
            steps = self._steps(rng.uniform(*HARSH_ACCEL_S))
            accel = rng.uniform(*HARSH_ACCEL_MPS2)
            self.harsh = _Harsh(truth.HARSH_ACCELERATION, accel, steps, ts_ms, speed_kmh)
            return
        # Spread harsh braking over the trip: about one chance in 30 s of eligible driving.
        chance = 1.0 - math.exp(-self.record_interval_s / 30.0)
        if self.plan.harsh_braking and speed_kmh > HARSH_BRAKE_MIN_KMH and rng.random() < chance:
            self.plan.harsh_braking = False
            decel = rng.uniform(*HARSH_BRAKE_MPS2)
            # Keep rolling: the episode ends above 2 m/s, not at a standstill.
            duration_s = min(rng.uniform(*HARSH_BRAKE_S), (self.speed_ms - 2.0) / decel)
            steps = self._steps(duration_s)
            self.harsh = _Harsh(truth.HARSH_BRAKING, -decel, steps, ts_ms, speed_kmh)

    def _steps(self, duration_s: float) -> int:
        return max(1, round(duration_s / self.step_s))

    def _close_harsh(self, ts_ms: int, complete: bool = True) -> None:
        harsh = self.harsh
        assert harsh is not None
        self.harsh = None
        to_kmh = round(self.speed_ms * 3.6, 1)
        duration_s = (ts_ms - harsh.start_ms) / 1000.0
        mean_mps2 = (to_kmh - harsh.from_kmh) / 3.6 / duration_s
        within_interval = self.record_interval_s <= self.detectors.harsh_max_interval_s
        if harsh.kind == truth.HARSH_BRAKING:
            strong = -mean_mps2 >= self.detectors.harsh_braking_mps2
            event = vocabulary.HARSH_BRAKING
        else:
            strong = mean_mps2 >= self.detectors.harsh_acceleration_mps2
            event = vocabulary.HARSH_ACCELERATION
        values = {
            "from_speed_kmh": harsh.from_kmh,
            "to_speed_kmh": to_kmh,
            "mean_accel_mps2": round(mean_mps2, 2),
            "set_accel_mps2": round(harsh.accel_mps2, 2),
        }
        expected = event if strong and within_interval else None
        self._add_truth(harsh.kind, harsh.start_ms, ts_ms, expected, values, complete)

    def _maybe_start_speeding(self) -> None:
        route = self.route
        if not self.plan.speeding or self.speeding is not None or route is None:
            return
        if not route.highway[self.segment] or self.highway_s < SPEEDING_AFTER_S:
            return
        target_ms = self.rng.uniform(*SPEEDING_TARGET_KMH) / 3.6
        hold_s = self.rng.uniform(*SPEEDING_HOLD_S)
        # Room to speed up, hold and ease off before the exit ramp.
        needed_m = 1000.0 + target_ms * (hold_s + 20.0)
        if route.highway_end_m(self.segment) - self.s_m >= needed_m:
            self.plan.speeding = False
            self.speeding = _Speeding(target_ms, hold_s)

    def _track_speeding(self, dt_s: float) -> None:
        speeding = self.speeding
        route = self.route
        if speeding is None or route is None:
            return
        if self.speed_ms * 3.6 > self.detectors.overspeed_limit_kmh:
            speeding.above_s += dt_s
        if speeding.above_s >= speeding.hold_s or not route.highway[self.segment]:
            self.speeding = None

    # Fuel changes while parked.

    def _update_fuel_change(self, ts_ms: int) -> None:
        change = self.fuel_change
        if change is None:
            return
        if change.start_ms is None:
            if self.parked_s >= change.start_after_s:
                change.start_ms = ts_ms
                change.from_pct = round(self.fuel_pct, 1)
            return
        if change.done:
            self.fuel_change = None
            self._close_fuel_change(change, ts_ms, complete=True)

    def _close_fuel_change(self, change: _FuelChange, ts_ms: int, complete: bool) -> None:
        assert change.start_ms is not None
        to_pct = round(self.fuel_pct, 1)
        values = {"from_pct": change.from_pct, "to_pct": to_pct}
        # A theft cut off by the end of the run may not have fallen far enough yet.
        detectable = change.from_pct - to_pct >= self.detectors.fuel_drop_pct
        event = vocabulary.FUEL_DROP if change.kind == truth.FUEL_THEFT and detectable else None
        self._add_truth(change.kind, change.start_ms, ts_ms, event, values, complete)

    def _add_truth(
        self,
        kind: str,
        start_ms: int,
        end_ms: int,
        event: str | None,
        values: Mapping[str, object],
        complete: bool = True,
    ) -> None:
        entry = TruthEntry(kind, self.device_id, start_ms, end_ms, event, complete, dict(values))
        self.truth.add(entry)
