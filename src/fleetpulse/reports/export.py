"""Reports as JSON objects, CSV text and Parquet files.

CSV and Parquet hold one table. Its ``row`` column contains ``day`` (a day of a vehicle
report), ``vehicle`` (a vehicle of a fleet report) or ``total``, and the figure columns
follow in the order of ``Figures``. An empty CSV cell and a Parquet null are a null figure.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec

from fleetpulse.reports.build import FleetReport, VehicleReport
from fleetpulse.reports.figures import Figures
from fleetpulse.reports.period import ReportPeriod

Report = VehicleReport | FleetReport

FIGURE_COLUMNS: tuple[str, ...] = Figures.__struct_fields__
ROW_DAY = "day"
ROW_VEHICLE = "vehicle"
ROW_TOTAL = "total"


def _period_json(period: ReportPeriod) -> dict[str, Any]:
    return {
        "from": period.first_day.isoformat(),
        "to": period.last_day.isoformat(),
        "tz": period.tz,
        "from_ms": period.from_ms,
        "to_ms": period.to_ms,
    }


def report_json(report: Report) -> dict[str, Any]:
    """Return the JSON object of a report (see docs/reports.md for the shape)."""
    body = _period_json(report.period)
    if isinstance(report, VehicleReport):
        body["device_id"] = report.device_id
        body["totals"] = msgspec.to_builtins(report.totals)
        body["days"] = [
            {"day": day.isoformat(), **msgspec.to_builtins(row)} for day, row in report.days
        ]
    else:
        body["vehicle_count"] = len(report.vehicles)
        body["totals"] = msgspec.to_builtins(report.totals)
        body["vehicles"] = [
            {"device_id": device_id, **msgspec.to_builtins(row)}
            for device_id, row in report.vehicles
        ]
    return body


def table_columns(report: Report) -> tuple[str, ...]:
    """Return the column names of the CSV and Parquet table of a report."""
    if isinstance(report, VehicleReport):
        return ("row", "device_id", "day", *FIGURE_COLUMNS)
    return ("row", "device_id", *FIGURE_COLUMNS)


def table_rows(report: Report) -> list[tuple[Any, ...]]:
    """Return the rows of the CSV and Parquet table, in table_columns order."""
    if isinstance(report, VehicleReport):
        rows = [
            (ROW_DAY, report.device_id, day.isoformat(), *msgspec.structs.astuple(row))
            for day, row in report.days
        ]
        rows.append((ROW_TOTAL, report.device_id, None, *msgspec.structs.astuple(report.totals)))
        return rows
    rows = [
        (ROW_VEHICLE, device_id, *msgspec.structs.astuple(row))
        for device_id, row in report.vehicles
    ]
    rows.append((ROW_TOTAL, None, *msgspec.structs.astuple(report.totals)))
    return rows


def report_csv(report: Report) -> str:
    """Return the report as CSV text with a header row (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table_columns(report))
    writer.writerows([_csv_safe(value) for value in row] for row in table_rows(report))
    return out.getvalue()


# A spreadsheet runs a cell that starts with one of these as a formula. Device ids come
# from devices, so a text cell starting with one is prefixed with an apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def report_parquet(report: Report) -> bytes:
    """Return the report as a Parquet file. The period is in the schema metadata
    (keys ``from``, ``to``, ``tz``)."""
    # Imported here because pyarrow takes a noticeable time to import, and only
    # Parquet reports need it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = table_columns(report)
    fields = [pa.field(name, _arrow_type(pa, name)) for name in columns]
    metadata = {key: str(value) for key, value in _period_json(report.period).items()}
    schema = pa.schema(fields, metadata=metadata)
    values = list(zip(*table_rows(report), strict=True))
    table = pa.table(
        [pa.array(v, type=f.type) for v, f in zip(values, fields, strict=True)], schema=schema
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _arrow_type(pa: Any, column: str) -> Any:
    if column in ("row", "device_id", "day"):
        return pa.string()
    if column in (
        "trips",
        "stops",
        "overspeed_count",
        "harsh_braking_count",
        "harsh_acceleration_count",
    ):
        return pa.int64()
    return pa.float64()
