"""Vehicle and fleet reports over whole days: distance, driving, speeding, harsh events.

Reports read the store's hourly activity aggregates, which the store keeps up to date
in the transaction of every write, so a month of a large fleet needs no scan of records.
"""

from fleetpulse.reports.build import (
    FleetReport,
    VehicleReport,
    build_fleet_report,
    build_vehicle_report,
)
from fleetpulse.reports.errors import InvalidPeriodError
from fleetpulse.reports.export import report_csv, report_json, report_parquet
from fleetpulse.reports.figures import Figures, safety_score
from fleetpulse.reports.period import ReportPeriod, parse_day, report_period

__all__ = [
    "Figures",
    "FleetReport",
    "InvalidPeriodError",
    "ReportPeriod",
    "VehicleReport",
    "build_fleet_report",
    "build_vehicle_report",
    "parse_day",
    "report_csv",
    "report_json",
    "report_parquet",
    "report_period",
    "safety_score",
]
