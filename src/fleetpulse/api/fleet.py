"""The fleet summary: what a fleet manager looks at first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.api.context import ApiContext
from fleetpulse.api.params import DAY_MS
from fleetpulse.api.render import encoder, iso_ms
from fleetpulse.model.vocabulary import IDLE, MOVING, OFFLINE, PARKED

HOUR_MS = 3_600_000
TOP_ALERT_VEHICLES = 10


def fleet_routes(ctx: ApiContext) -> list[Route]:
    """Build ``/v1/fleet/summary``."""

    async def summary(request: Request) -> Response:
        now_ms = ctx.clock_ms()
        offline_after_ms = int(ctx.settings.process.offline_after_s * 1000)
        counts = {MOVING: 0, IDLE: 0, PARKED: 0, OFFLINE: 0}
        views = await ctx.store.vehicles()
        for view in views:
            # A vehicle is offline once it has been silent for offline_after_s, whether or
            # not the processor's sweep has marked it yet.
            silent = now_ms - view.last_received_at_ms > offline_after_ms
            motion = OFFLINE if view.offline or silent else view.motion
            counts[motion] = counts.get(motion, 0) + 1
        hour_ago_ms = now_ms - HOUR_MS
        events_last_hour = await ctx.store.event_counts(hour_ago_ms, now_ms + 1)
        midnight_ms = now_ms - now_ms % DAY_MS
        distance_today_m = await ctx.store.distance_m(midnight_ms, now_ms + 1)
        # Every vehicle's count, so the total covers the whole fleet, not just the top ones.
        leaders = await ctx.store.alert_leaders(hour_ago_ms, now_ms + 1, max(1, len(views)))
        body = {
            "generated_at": iso_ms(now_ms),
            "vehicles": {"total": len(views), **counts},
            "events_last_hour": events_last_hour,
            "alerts_last_hour": sum(n for _, n in leaders),
            "distance_today_m": distance_today_m,
            "distance_today_since": iso_ms(midnight_ms),
            "top_alert_vehicles": [
                {"device_id": d, "alerts": n} for d, n in leaders[:TOP_ALERT_VEHICLES]
            ],
        }
        return Response(encoder.encode(body), media_type="application/json")

    return [Route("/v1/fleet/summary", summary, methods=["GET"])]
