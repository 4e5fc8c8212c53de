"""Report endpoints: one vehicle's or the whole fleet's figures over whole days."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.api.context import ApiContext
from fleetpulse.api.errors import ApiError
from fleetpulse.api.render import encoder
from fleetpulse.reports import (
    InvalidPeriodError,
    ReportPeriod,
    VehicleReport,
    build_fleet_report,
    build_vehicle_report,
    parse_day,
    report_csv,
    report_json,
    report_parquet,
    report_period,
)
from fleetpulse.reports.build import FleetReport
from fleetpulse.reports.period import DEFAULT_TZ

FORMATS = ("json", "csv", "parquet")
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"


def _period(request: Request) -> ReportPeriod:
    params = request.query_params
    raw_from = params.get("from")
    if not raw_from:
        raise ApiError(
            400, "invalid_parameter", "from is missing; give the first day as YYYY-MM-DD"
        )
    try:
        first_day = parse_day("from", raw_from)
        raw_to = params.get("to")
        last_day = parse_day("to", raw_to) if raw_to else first_day
        return report_period(first_day, last_day, params.get("tz") or DEFAULT_TZ)
    except InvalidPeriodError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from exc


def _format(request: Request) -> str:
    chosen = request.query_params.get("format") or "json"
    if chosen not in FORMATS:
        raise ApiError(
            400,
            "invalid_parameter",
            f"format={chosen!r} is not supported; use one of {', '.join(FORMATS)}",
        )
    return chosen


def _filename(report: VehicleReport | FleetReport) -> str:
    period = report.period
    name = report.device_id if isinstance(report, VehicleReport) else "fleet"
    # Keeps a device id with "/" or quotes from breaking the header or the path.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"report-{safe}-{period.first_day.isoformat()}-{period.last_day.isoformat()}"


def _respond(report: VehicleReport | FleetReport, chosen: str) -> Response:
    if chosen == "json":
        return Response(encoder.encode(report_json(report)), media_type="application/json")

    render: Callable[[VehicleReport | FleetReport], str | bytes]
    if chosen == "csv":
        render, media_type = report_csv, "text/csv; charset=utf-8"
    else:
        render, media_type = report_parquet, PARQUET_MEDIA_TYPE
    disposition = f'attachment; filename="{_filename(report)}.{chosen}"'
    return Response(
        render(report), media_type=media_type, headers={"content-disposition": disposition}
    )


def report_routes(ctx: ApiContext) -> list[Route]:
    """Build the ``/v1/reports`` routes."""

    async def vehicle_report(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        period = _period(request)
        chosen = _format(request)
        if await ctx.store.vehicle(device_id) is None:
            raise ApiError(
                404,
                "vehicle_not_found",
                f"no vehicle {device_id!r} has sent a record; list known vehicles with "
                "GET /v1/vehicles",
            )
        report = await build_vehicle_report(ctx.store, device_id, period)
        return _respond(report, chosen)

    async def fleet_report(request: Request) -> Response:
        period = _period(request)
        chosen = _format(request)
        report = await build_fleet_report(ctx.store, period)
        return _respond(report, chosen)

    # Device ids may contain "/", so the id is a path parameter.
    return [
        Route("/v1/reports/fleet", fleet_report, methods=["GET"]),
        Route("/v1/reports/vehicles/{device_id:path}", vehicle_report, methods=["GET"]),
    ]
