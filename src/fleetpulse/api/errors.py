"""JSON error responses: every error names what failed and what to do next."""

from __future__ import annotations

import logging
import time

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.errors import QueueError, StoreError

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()

# Retry-After of a 503 for an unreachable store or queue, in seconds: a few health
# check intervals, so a client does not retry faster than recovery can be noticed.
BACKEND_RETRY_AFTER_S = 5
# While a backend is down every request fails the same way, so the warning is logged at
# most once per interval, with the number of failed requests since the last one.
BACKEND_ERROR_LOG_INTERVAL_S = 10.0


class ApiError(Exception):
    """An error response with an HTTP status, a stable code and a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """Build ``{"error": {"code": ..., "message": ...}}`` with the given status."""
    body = _encoder.encode({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    """Turn an ApiError raised by a handler into its JSON response."""
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


class _BackendErrorLog:
    """Logs one warning per interval for failed backend calls, and counts the rest."""

    def __init__(self, interval_s: float = BACKEND_ERROR_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.count = 0
        self.logged_at = -interval_s

    def record(self, request: Request, code: str, exc: Exception) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at < self.interval_s:
            return
        log.warning(
            "responding with 503 %s path=%s requests_since_warning=%d: %s",
            code,
            request.url.path,
            self.count,
            exc,
        )
        self.logged_at = now
        self.count = 0


_backend_error_log = _BackendErrorLog()


async def handle_backend_error(request: Request, exc: Exception) -> Response:
    """Convert a retriable StoreError or QueueError into a 503 JSON response with Retry-After.

    The error is logged without a traceback, at most once per interval. A non-retriable
    one is re-raised, so that it becomes a 500 with its traceback in the log.
    """
    if not isinstance(exc, StoreError | QueueError) or not exc.retriable:
        raise exc
    if isinstance(exc, StoreError):
        code, backend = "store_unavailable", "the store"
    else:
        code, backend = "queue_unavailable", "the queue"
    _backend_error_log.record(request, code, exc)
    message = (
        f"{request.url.path}: {backend} is unreachable ({exc}); send the request again "
        f"after {BACKEND_RETRY_AFTER_S} s"
    )
    headers = {"Retry-After": str(BACKEND_RETRY_AFTER_S)}
    return error_response(503, code, message, headers)


def add_backend_error_handlers(app: Starlette) -> None:
    """Register ``handle_backend_error`` for StoreError and QueueError on ``app``."""
    app.add_exception_handler(StoreError, handle_backend_error)
    app.add_exception_handler(QueueError, handle_backend_error)


_HTTP_HINTS = {
    404: ("not_found", "no such endpoint; the API is described at GET /openapi.json"),
    405: ("method_not_allowed", "method not allowed here; see GET /openapi.json"),
}


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Answer Starlette's own 404 and 405 as JSON errors."""
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_HINTS.get(exc.status_code, ("http_error", str(exc.detail)))
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        # RFC 9110 requires Allow on a 405. Starlette fills it from the first route that
        # matched the path, so a path served by one route per method needs the union.
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return error_response(exc.status_code, code, f"{request.url.path}: {message}", headers)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
            methods.update(route.methods)
    return sorted(methods)
