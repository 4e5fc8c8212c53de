"""Building vehicle and fleet reports from the store's hourly activity."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass
from datetime import date

from fleetpulse.reports.figures import Figures, figures, sum_activity
from fleetpulse.reports.period import ReportPeriod
from fleetpulse.store.base import Store, VehicleActivity

log = logging.getLogger(__name__)


@dataclass(slots=True)
class VehicleReport:
    """One vehicle's figures per local day of the period, and over the whole period."""

    device_id: str
    period: ReportPeriod
    days: list[tuple[date, Figures]]
    totals: Figures


@dataclass(slots=True)
class FleetReport:
    """The figures of every known vehicle over the period, and the fleet totals.

    The totals' ``utilization`` is the driving time of all vehicles over the vehicle
    count times the period, and their safety score rates the fleet's summed distance.
    """

    period: ReportPeriod
    vehicles: list[tuple[str, Figures]]
    totals: Figures


async def build_vehicle_report(store: Store, device_id: str, period: ReportPeriod) -> VehicleReport:
    """Build a vehicle's report. A vehicle without activity gets rows of zeros."""
    hours = await store.vehicle_activity(device_id, period.from_ms, period.to_ms)
    starts = period.day_starts_ms
    by_day: list[list[VehicleActivity]] = [[] for _ in period.days()]
    for hour in hours:
        by_day[bisect.bisect_right(starts, hour.start_ms) - 1].append(hour)

    days = []
    for index, day in enumerate(period.days()):
        day_length_s = (starts[index + 1] - starts[index]) / 1000
        day_total = sum_activity(device_id, starts[index], by_day[index])
        days.append((day, figures(day_total, day_length_s)))
    totals = figures(sum_activity(device_id, period.from_ms, hours), period.length_s)
    log.debug("vehicle report built device_id=%s hours=%d", device_id, len(hours))
    return VehicleReport(device_id, period, days, totals)


async def build_fleet_report(store: Store, period: ReportPeriod) -> FleetReport:
    """Build the report of every vehicle in the store, ordered by device id."""
    activity = await store.fleet_activity(period.from_ms, period.to_ms)
    vehicles = [(item.device_id, figures(item, period.length_s)) for item in activity]
    fleet_total = sum_activity("", period.from_ms, activity)
    totals = figures(fleet_total, period.length_s * len(activity))
    log.debug("fleet report built vehicles=%d", len(activity))
    return FleetReport(period, vehicles, totals)
