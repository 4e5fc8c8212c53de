"""The evaluation scenarios: simulated conditions whose ground truth is known.

Every scenario starts from EVALUATION_RATES, which inject episodes more often than the
simulator's defaults so that a short run has enough of each to score. The hard ones
change one condition each.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetpulse.sim.options import BehaviourRates, DeviceFaults

# Several episodes of each kind per vehicle-hour, where the simulator's defaults give a
# few per fleet-hour. The device faults (outages, GPS jumps) keep their default rates.
EVALUATION_RATES = BehaviourRates(
    highway_trip=0.5,
    speeding=0.8,
    harsh_braking=0.5,
    harsh_acceleration=0.5,
    engine_fault=0.15,
    low_fuel=0.3,
    fuel_theft=0.15,
    long_idle=0.2,
)
# The simulator's defaults: 1 record in 1000 sent twice, 1 in 100 bad.
DEFAULT_DUPLICATE_SHARE = 0.001
DEFAULT_BAD_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class Scenario:
    """One named set of simulator options."""

    name: str
    description: str
    behaviours: BehaviourRates = EVALUATION_RATES
    faults: DeviceFaults = DeviceFaults()
    duplicate_share: float = DEFAULT_DUPLICATE_SHARE
    bad_share: float = DEFAULT_BAD_SHARE


def _rates(**changes: float) -> BehaviourRates:
    fields = {name: getattr(EVALUATION_RATES, name) for name in EVALUATION_RATES.__struct_fields__}
    fields.update(changes)
    return BehaviourRates(**fields)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("clean", "default GPS error (2 m), faults at their default rates"),
        Scenario(
            "gps_noise",
            "GPS error of 6 m per axis, as in a city street canyon",
            faults=DeviceFaults(gps_sigma_m=6.0),
        ),
        Scenario(
            "gps_jumps",
            "6 outlier fixes 2-5 km off per vehicle-hour",
            behaviours=_rates(gps_jump_per_hour=6.0),
        ),
        Scenario(
            "parked_drift",
            "parks 4 times longer, fixes wandering 15 m per axis while parked",
            behaviours=_rates(park_scale=4.0),
            faults=DeviceFaults(parked_drift_m=15.0),
        ),
        Scenario(
            "bursts",
            "3 uplink outages per vehicle-hour, each buffer sent newest first",
            behaviours=_rates(outage_per_hour=3.0),
            faults=DeviceFaults(bursts_newest_first=True),
        ),
        Scenario("duplicates", "5 % of records sent twice", duplicate_share=0.05),
        Scenario(
            "odometer_glitches",
            "2 % of records with an odometer of 0",
            faults=DeviceFaults(odometer_zero_share=0.02),
        ),
        Scenario(
            "clock_skew",
            "device clocks off by up to 4 minutes either way",
            faults=DeviceFaults(clock_skew_max_s=240.0),
        ),
    )
}
