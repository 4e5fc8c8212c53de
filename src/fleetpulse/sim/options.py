"""Options of a simulation run and the rates of the behaviours it injects."""

from __future__ import annotations

import math

import msgspec

DEFAULT_URL = "http://127.0.0.1:8080"
# A city centre for the synthetic road network (central Munich). Any land position works.
DEFAULT_CENTRE_LAT = 48.137
DEFAULT_CENTRE_LON = 11.575


class BehaviourRates(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How often each injected behaviour happens, as a probability per opportunity.

    Set a rate to 1.0 to force a behaviour at every opportunity, 0.0 to switch it off.
    """

    # Share of trips that take the ring highway.
    highway_trip: float = 0.4
    # Per highway trip: a speeding episode above the overspeed limit for 15-60 s.
    speeding: float = 0.5
    # Per trip: one harsh braking (4.5-6.5 m/s2 for 1-2 s) at speed.
    harsh_braking: float = 0.15
    # Per trip: one harsh start from standstill (3.5-4.5 m/s2 for 2-3 s).
    harsh_acceleration: float = 0.15
    # Per trip: a new fault code. A share of them come with the coolant overheating.
    engine_fault: float = 0.03
    overheat_share: float = 0.3
    # Per vehicle: starts the run just above the low-fuel threshold, then refuels.
    low_fuel: float = 0.1
    # Per park with enough fuel: a drop of 12-25 % while the ignition is off.
    fuel_theft: float = 0.03
    # Per trip: the engine idles 5.5-12 minutes before leaving.
    long_idle: float = 0.05
    # Per vehicle-hour: the device loses its uplink for 30-300 s and buffers records.
    outage_per_hour: float = 0.3
    # Per vehicle-hour: one fix lands 2-5 km away from the true position.
    gps_jump_per_hour: float = 0.5
    # Factor on every park's duration (120-900 s at 1.0).
    park_scale: float = 1.0


class DeviceFaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Receiver and device faults beyond the rates above. The defaults add none.

    ``gps_sigma_m`` is the standard deviation of the slow GPS error per axis.
    ``parked_drift_m`` adds a second, slower wander of that standard deviation per axis
    to the fixes of a parked vehicle, as under a roof or between tall buildings.
    ``bursts_newest_first`` sends the records buffered in an outage newest first.
    ``odometer_zero_share`` is the share of records whose odometer reads 0, as after a
    failed bus read. ``clock_skew_max_s`` sets each device's clock off by up to that many
    seconds, either way, for the whole run.
    """

    gps_sigma_m: float = 2.0
    parked_drift_m: float = 0.0
    bursts_newest_first: bool = False
    odometer_zero_share: float = 0.0
    clock_skew_max_s: float = 0.0

    def __post_init__(self) -> None:
        if self.gps_sigma_m < 0 or self.parked_drift_m < 0:
            raise ValueError("gps_sigma_m and parked_drift_m must be 0 or more metres")
        if not 0 <= self.odometer_zero_share <= 1:
            share = self.odometer_zero_share
            raise ValueError(f"odometer_zero_share must be in [0, 1], got {share}")
        if self.clock_skew_max_s < 0:
            raise ValueError(f"clock_skew_max_s must be 0 or more, got {self.clock_skew_max_s}")


class SimulationOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One simulation run: the fleet, its timeline and where the records go.

    ``speed`` is the time factor: 1 runs in real time, 60 runs an hour in a minute, and
    math.inf sends as fast as the server takes records. ``bad_share`` and
    ``duplicate_share`` are per good record generated.
    """

    vehicles: int = 10
    rate_hz: float = 1.0
    duration_s: float = 600.0
    url: str = DEFAULT_URL
    seed: int = 1
    speed: float = 1.0
    batch_size: int = 500
    bad_share: float = 0.01
    duplicate_share: float = 0.001
    truth_path: str | None = "sim-truth.jsonl"
    concurrency: int = 4
    request_timeout_s: float = 10.0
    # How long one batch may be retried (503, 429, lost connections) before the run fails.
    give_up_after_s: float = 300.0
    device_prefix: str = "sim-"
    centre_lat: float = DEFAULT_CENTRE_LAT
    centre_lon: float = DEFAULT_CENTRE_LON
    behaviours: BehaviourRates = BehaviourRates()
    faults: DeviceFaults = DeviceFaults()
    # Transport module in fleetpulse.sim.transports: http, teltonika, osmand or mqtt.
    protocol: str = "http"

    def __post_init__(self) -> None:
        if self.vehicles < 1:
            raise ValueError(f"vehicles must be at least 1, got {self.vehicles}")
        if not 0 < self.rate_hz <= 100:
            raise ValueError(f"rate_hz must be in (0, 100] Hz, got {self.rate_hz}")
        if not 0 < self.duration_s < math.inf:
            raise ValueError(f"duration_s must be positive and finite, got {self.duration_s}")
        if not self.speed > 0:
            raise ValueError(f"speed must be positive (math.inf for max), got {self.speed}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0 <= self.bad_share <= 1:
            raise ValueError(f"bad_share must be in [0, 1], got {self.bad_share}")
        if not 0 <= self.duplicate_share <= 1:
            raise ValueError(f"duplicate_share must be in [0, 1], got {self.duplicate_share}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")

    @property
    def record_interval_s(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def ticks(self) -> int:
        """Return the number of records each vehicle generates (one per tick)."""
        return max(1, math.floor(self.duration_s * self.rate_hz + 1e-9))
