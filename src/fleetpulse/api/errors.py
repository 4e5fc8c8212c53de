"""JSON error responses: every error names what failed and what to do next."""

from __future__ import annotations

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_encoder = msgspec.json.Encoder()


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
