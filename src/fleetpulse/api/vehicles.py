"""Vehicle endpoints: latest state, positions and trips of one vehicle."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.api.context import ApiContext
from fleetpulse.api.errors import ApiError
from fleetpulse.api.params import DAY_MS, check_range, parse_limit, parse_time_ms
from fleetpulse.api.render import encoder, position_json, trip_json, vehicle_json

POSITIONS_DEFAULT_LIMIT = 1_000
POSITIONS_MAX_LIMIT = 10_000


def _json(body: object) -> Response:
    return Response(encoder.encode(body), media_type="application/json")


def vehicle_routes(ctx: ApiContext) -> list[Route]:
    """Build the ``/v1/vehicles`` routes."""

    async def list_vehicles(request: Request) -> Response:
        views = await ctx.store.vehicles()
        return _json({"count": len(views), "vehicles": [vehicle_json(v) for v in views]})

    async def get_vehicle(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        view = await ctx.store.vehicle(device_id)
        if view is None:
            raise ApiError(
                404,
                "vehicle_not_found",
                f"no vehicle {device_id!r} has sent a record; list known vehicles with "
                "GET /v1/vehicles",
            )
        return _json(vehicle_json(view))

    async def positions(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        now_ms = ctx.clock_ms()
        from_ms = parse_time_ms(request, "from", now_ms - DAY_MS)
        to_ms = parse_time_ms(request, "to", now_ms + DAY_MS)
        check_range(from_ms, to_ms)
        limit = parse_limit(request, POSITIONS_DEFAULT_LIMIT, POSITIONS_MAX_LIMIT)
        items = await ctx.store.positions(device_id, from_ms, to_ms, limit)
        next_url = None
        if len(items) == limit:
            query = urlencode({"from": items[-1].record.ts_ms + 1, "to": to_ms, "limit": limit})
            next_url = f"{request.url.path}?{query}"
        return _json(
            {
                "device_id": device_id,
                "count": len(items),
                "positions": [position_json(item) for item in items],
                "next": next_url,
            }
        )

    async def trips(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        now_ms = ctx.clock_ms()
        from_ms = parse_time_ms(request, "from", now_ms - DAY_MS)
        to_ms = parse_time_ms(request, "to", now_ms + DAY_MS)
        check_range(from_ms, to_ms)
        found = await ctx.store.trips(device_id, from_ms, to_ms)
        return _json(
            {"device_id": device_id, "count": len(found), "trips": [trip_json(t) for t in found]}
        )

    # Device ids may contain "/" (sent as %2F or plainly), so the id is a path
    # parameter and the routes with a suffix come before the bare one.
    return [
        Route("/v1/vehicles", list_vehicles, methods=["GET"]),
        Route("/v1/vehicles/{device_id:path}/positions", positions, methods=["GET"]),
        Route("/v1/vehicles/{device_id:path}/trips", trips, methods=["GET"]),
        Route("/v1/vehicles/{device_id:path}", get_vehicle, methods=["GET"]),
    ]
