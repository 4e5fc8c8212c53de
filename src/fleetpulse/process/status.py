"""Status step: the record's status level and the reasons for it.

A reason is named after the event type or flag that causes it. Overspeed and engine
overheat make a record an alert. Fault codes, low fuel, low battery, idling, a missing
fix and a GPS jump make it a warning.
"""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import (
    ALERT,
    DTC,
    ENGINE_OVERHEAT,
    FLAG_GPS_JUMP,
    FLAG_NO_FIX,
    IDLING,
    LOW_BATTERY,
    LOW_FUEL,
    NORMAL,
    OVERSPEED,
    WARNING,
)
from fleetpulse.process.sample import Sample
from fleetpulse.process.state import VehicleState


def assess_status(vehicle: VehicleState, sample: Sample, settings: Settings) -> None:
    """Set the sample's status and reasons from the detectors' states after this record."""
    enriched = sample.enriched
    if not (
        enriched.flags
        or vehicle.overspeed.active
        or vehicle.overheat.active
        or vehicle.dtc.active
        or vehicle.low_fuel.active
        or vehicle.low_battery.active
        or vehicle.idling.active
    ):
        # Most records: nothing to report, so the record keeps its new, empty reasons list.
        enriched.status = NORMAL
        return
    alerts: list[str] = []
    warnings: list[str] = []
    if vehicle.overspeed.active:
        alerts.append(OVERSPEED)
    if vehicle.overheat.active:
        alerts.append(ENGINE_OVERHEAT)
    if vehicle.dtc.active:
        warnings.append(DTC)
    if vehicle.low_fuel.active:
        warnings.append(LOW_FUEL)
    if vehicle.low_battery.active:
        warnings.append(LOW_BATTERY)
    if vehicle.idling.active:
        warnings.append(IDLING)
    _add_flag_reasons(enriched.flags, warnings)
    enriched.status, enriched.reasons = _level(alerts, warnings)


def assess_late_status(
    record: Record, flags: list[str], settings: Settings
) -> tuple[str, list[str]]:
    """Return the status and reasons of a late record from its own values alone.

    A late record must not touch the vehicle's state, so conditions that need history
    (overspeed duration, idling) are not assessed, and thresholds are checked without
    hysteresis.
    """
    thresholds = settings.detectors
    alerts: list[str] = []
    warnings: list[str] = []
    if record.coolant_c is not None and record.coolant_c > thresholds.coolant_overheat_c:
        alerts.append(ENGINE_OVERHEAT)
    if record.dtc:
        warnings.append(DTC)
    if record.fuel_pct is not None and record.fuel_pct <= thresholds.low_fuel_pct:
        warnings.append(LOW_FUEL)
    if record.battery_v is not None and record.battery_v <= thresholds.low_battery_v:
        warnings.append(LOW_BATTERY)
    _add_flag_reasons(flags, warnings)
    return _level(alerts, warnings)


def _add_flag_reasons(flags: list[str], warnings: list[str]) -> None:
    if not flags:
        return
    if FLAG_NO_FIX in flags:
        warnings.append(FLAG_NO_FIX)
    if FLAG_GPS_JUMP in flags:
        warnings.append(FLAG_GPS_JUMP)


def _level(alerts: list[str], warnings: list[str]) -> tuple[str, list[str]]:
    if alerts:
        alerts.extend(warnings)
        return ALERT, alerts
    if warnings:
        return WARNING, warnings
    return NORMAL, warnings
