"""Operational endpoints: health, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse import metrics
from fleetpulse.api.context import ApiContext
from fleetpulse.api.openapi import openapi_document
from fleetpulse.api.render import encoder


def system_routes(ctx: ApiContext) -> list[Route]:
    """Build ``/healthz``, ``/metrics`` and ``/openapi.json``."""
    document = encoder.encode(openapi_document())

    async def healthz(request: Request) -> Response:
        problems = ctx.health_problems() + _storage_full_problems()
        depth = ctx.queue.depth() if ctx.queue is not None else None
        body: dict[str, object] = {"status": "ok" if not problems else "failing"}
        body["problems"] = problems
        body["queue_depth_records"] = depth
        status = 200 if not problems else 503
        return Response(encoder.encode(body), status_code=status, media_type="application/json")

    async def metrics_text(request: Request) -> Response:
        if ctx.queue is not None:
            metrics.QUEUE_DEPTH.set(ctx.queue.depth())
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_text, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


def _storage_full_problems() -> list[str]:
    """Describe each SQLite file of this process whose last commit failed on a full disk."""
    problems = []
    for metric in metrics.DATABASE_FULL.collect():
        for sample in metric.samples:
            if sample.value:
                problems.append(
                    f"disk full: commits to {sample.labels['file']} fail, so ingest answers "
                    "503 storage_full; free disk space, and commits resume without a restart"
                )
    return problems
