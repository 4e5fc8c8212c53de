"""Operational endpoints: health, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse import metrics
from fleetpulse.api.context import ApiContext
from fleetpulse.api.openapi import openapi_document
from fleetpulse.api.render import encoder

log = logging.getLogger(__name__)

# How long /healthz reuses the result of the queue and store checks, in seconds. A
# probe every second then costs the backends one request each per interval.
DEPENDENCY_CHECK_INTERVAL_S = 2.0


def system_routes(ctx: ApiContext) -> list[Route]:
    """Build ``/healthz``, ``/metrics`` and ``/openapi.json``."""
    document = encoder.encode(openapi_document())
    dependencies = DependencyChecks(ctx)

    async def healthz(request: Request) -> Response:
        problems = ctx.health_problems() + _storage_full_problems()
        problems += await dependencies.problems()
        depth = ctx.queue.depth() if ctx.queue is not None else None
        body: dict[str, object] = {"status": "ok" if not problems else "failing"}
        body["problems"] = problems
        body["queue_depth_records"] = depth
        status = 200 if not problems else 503
        return Response(encoder.encode(body), status_code=status, media_type="application/json")

    async def metrics_text(request: Request) -> Response:
        if ctx.queue is not None:
            metrics.QUEUE_DEPTH.set(ctx.queue.depth())
        # Includes the processor child's metrics under `fleetpulse run`.
        registry = await metrics.merged_registry()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


class DependencyChecks:
    """Runs ``Queue.check`` and ``Store.check`` at most once per interval, and logs changes."""

    def __init__(self, ctx: ApiContext, interval_s: float = DEPENDENCY_CHECK_INTERVAL_S) -> None:
        self._ctx = ctx
        self._interval_s = interval_s
        self._checked_at = -interval_s
        self._problems: list[str] = []
        self._lock = asyncio.Lock()

    async def problems(self) -> list[str]:
        """Return the problems found by the last check, checking again once it is stale."""
        async with self._lock:
            now = time.monotonic()
            if now - self._checked_at >= self._interval_s:
                problems = await self._check()
                if problems != self._problems:
                    if problems:
                        log.warning("health check failing: %s", "; ".join(problems))
                    else:
                        log.info("health check passing again: queue and store reachable")
                self._problems = problems
                self._checked_at = time.monotonic()
            return list(self._problems)

    async def _check(self) -> list[str]:
        checks = [self._ctx.store.check()]
        if self._ctx.queue is not None:
            checks.append(self._ctx.queue.check())
        results = await asyncio.gather(*checks)
        return [problem for problem in results if problem is not None]


def _storage_full_problems() -> list[str]:
    """Describe each SQLite file whose last commit failed on a full disk, in this process
    or in its processor child."""
    return [
        f"disk full: commits to {path} fail, so ingest answers 503 storage_full; free disk "
        "space, and commits resume without a restart"
        for path in metrics.database_full_files()
    ]
