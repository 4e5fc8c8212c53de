"""Engine and sensor models: coolant temperature, battery voltage, rpm, fuel use.

Each is a small function of the vehicle's state so the vehicle module stays about motion.
"""

from __future__ import annotations

import math

# A warm engine's thermostat keeps the coolant near this temperature.
COOLANT_WARM_C = 90.0
# Coolant target during an injected overheat, above the server's 105 C alarm.
COOLANT_OVERHEAT_C = 114.0
# Time constants: a cold engine warms in about 10 minutes, an overheat builds in about 2,
# and a parked engine cools over half an hour or more.
WARM_UP_TAU_S = 240.0
OVERHEAT_TAU_S = 90.0
COOL_DOWN_TAU_S = 1800.0

# Alternator output with the engine running, and a rested lead-acid battery.
CHARGING_V = 14.2
RESTING_V = 12.6

IDLE_RPM = 800.0
# Upshift speeds (km/h) and engine rpm per km/h in each gear of a five-speed car.
GEAR_UPSHIFT_KMH = (15.0, 30.0, 45.0, 65.0)
RPM_PER_KMH = (110.0, 62.0, 42.0, 32.0, 26.0)
# Extra rpm at full accelerating effort (about 2.5 m/s2).
ACCEL_RPM = 500.0


def coolant_after(
    coolant_c: float, ignition: bool, overheating: bool, ambient_c: float, dt_s: float
) -> float:
    """Return the coolant temperature after ``dt_s``, relaxing towards its target."""
    if not ignition:
        target_c, tau_s = ambient_c, COOL_DOWN_TAU_S
    elif overheating:
        target_c, tau_s = COOLANT_OVERHEAT_C, OVERHEAT_TAU_S
    elif coolant_c > COOLANT_WARM_C + 2.0:
        # Recovering from an overheat: the fan and thermostat pull it back quickly.
        target_c, tau_s = COOLANT_WARM_C, OVERHEAT_TAU_S
    else:
        target_c, tau_s = COOLANT_WARM_C, WARM_UP_TAU_S
    return coolant_c + (target_c - coolant_c) * (1.0 - math.exp(-dt_s / tau_s))


def battery_v(ignition: bool, offset_v: float) -> float:
    """Return the battery voltage: charging with the engine on, resting when off."""
    return (CHARGING_V if ignition else RESTING_V) + offset_v


def engine_rpm(ignition: bool, speed_ms: float, accel_mps2: float) -> float:
    """Return the engine speed from the road speed, a gear choice and the effort."""
    if not ignition:
        return 0.0
    speed_kmh = speed_ms * 3.6
    if speed_kmh < 1.0:
        return IDLE_RPM
    gear = sum(1 for upshift in GEAR_UPSHIFT_KMH if speed_kmh >= upshift)
    effort = max(0.0, min(1.0, accel_mps2 / 2.5))
    return max(IDLE_RPM, speed_kmh * RPM_PER_KMH[gear]) + ACCEL_RPM * effort


def fuel_used_l(
    distance_m: float,
    accel_mps2: float,
    ignition: bool,
    l_per_100km: float,
    idle_l_per_h: float,
    dt_s: float,
) -> float:
    """Return the fuel burnt in one step: by distance (more when accelerating) plus idle."""
    if not ignition:
        return 0.0
    effort = 1.0 + 0.4 * max(0.0, accel_mps2)
    return distance_m * l_per_100km / 100_000.0 * effort + idle_l_per_h * dt_s / 3600.0
