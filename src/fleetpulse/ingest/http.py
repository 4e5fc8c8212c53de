"""The HTTP ingest route: ``POST /v1/telemetry``.

Responses, all JSON:

- 202 ``{"accepted": N, "rejected": M, "errors": [...], "errors_truncated": K}`` once the
  accepted records are durable in the queue. ``errors`` lists at most
  ``MAX_RESPONSE_ERRORS`` rejected records and ``errors_truncated`` counts the rest.
- 400 invalid JSON, 413 body or batch too large, 415 missing or unsupported
  Content-Type, 503 with ``Retry-After`` when the queue is full or unavailable,
  500 on a server bug. The body is ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import logging
from typing import Final

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.errors import FleetpulseError, QueueFullError
from fleetpulse.ingest.service import IngestRequestError, IngestResult, IngestService, RecordError
from fleetpulse.model.vocabulary import (
    ERROR_INTERNAL,
    ERROR_QUEUE_FULL,
    ERROR_UNAVAILABLE,
    SOURCE_HTTP,
    TOO_LARGE,
)

log = logging.getLogger(__name__)

TELEMETRY_PATH: Final = "/v1/telemetry"
# A client fixing its records needs a sample of the errors, not all 10,000 of a batch.
MAX_RESPONSE_ERRORS: Final = 100
_JSON: Final = "application/json"
_ENCODER: Final = msgspec.json.Encoder()


class TelemetryResponse(msgspec.Struct, gc=False):
    """The body of a 202 response."""

    accepted: int
    rejected: int
    errors: list[RecordError]
    errors_truncated: int


class ErrorDetail(msgspec.Struct, gc=False):
    """A machine-readable code and a message with the client's next step."""

    code: str
    message: str


class ErrorResponse(msgspec.Struct, gc=False):
    """The body of every error response."""

    error: ErrorDetail


def telemetry_routes(service: IngestService) -> list[Route]:
    """Build the ``POST /v1/telemetry`` route that feeds ``service``."""

    async def post_telemetry(request: Request) -> Response:
        return await _handle_telemetry(service, request)

    return [Route(TELEMETRY_PATH, post_telemetry, methods=["POST"])]


async def _handle_telemetry(service: IngestService, request: Request) -> Response:
    content_type = request.headers.get("content-type")
    retry_after_s = service.settings.ingest.retry_after_s
    try:
        await service.check_content_type(content_type, SOURCE_HTTP)
        body = await _read_body(service, request)
        result = await service.ingest_body(body, content_type, SOURCE_HTTP)
    except IngestRequestError as exc:
        return error_response(exc.status, exc.reason, exc.message)
    except QueueFullError:
        message = f"the queue is full; send the same request again after {retry_after_s} s"
        return error_response(503, ERROR_QUEUE_FULL, message, retry_after_s)
    except ClientDisconnect:
        log.debug("client %s disconnected before sending the whole body", _client(request))
        return Response(status_code=400)
    except FleetpulseError as exc:
        if exc.retriable:
            log.error("ingest failed, responding with 503 client=%s: %s", _client(request), exc)
            message = (
                f"ingest is unavailable ({exc}); send the same request again after "
                f"{retry_after_s} s"
            )
            return error_response(503, ERROR_UNAVAILABLE, message, retry_after_s)
        return _internal_error(request)
    except Exception:
        return _internal_error(request)

    return Response(_ENCODER.encode(_accepted_body(result)), status_code=202, media_type=_JSON)


def _internal_error(request: Request) -> Response:
    # Called from an except block, so log.exception records the active traceback. Every
    # error body is JSON, even a bug's, where Starlette's default 500 is plain text.
    log.exception("ingest failed with an unexpected error client=%s", _client(request))
    message = "internal error while ingesting; the server log has the traceback"
    return error_response(500, ERROR_INTERNAL, message)


async def _read_body(service: IngestService, request: Request) -> bytes:
    """Read the body, stopping as soon as it exceeds ``ingest.max_body_bytes``.

    The limit is checked against Content-Length before reading and against the bytes
    received while streaming, so reading keeps at most the limit plus one chunk in memory.
    """
    max_bytes = service.settings.ingest.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        message = (
            f"the body is {declared} bytes (Content-Length); at most {max_bytes} are accepted "
            "(ingest.max_body_bytes), so split the batch"
        )
        raise await service.reject_request(TOO_LARGE, message, b"", SOURCE_HTTP)

    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            message = (
                f"the body is more than {max_bytes} bytes; at most {max_bytes} are accepted "
                "(ingest.max_body_bytes), so split the batch"
            )
            head = _head(chunks, service.settings.ingest.dead_letter_raw_bytes)
            raise await service.reject_request(TOO_LARGE, message, head, SOURCE_HTTP)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _head(chunks: list[bytes], limit: int) -> bytes:
    """Join only the chunks needed for the first ``limit`` bytes of the body."""
    head: list[bytes] = []
    size = 0
    for chunk in chunks:
        if size >= limit:
            break
        head.append(chunk)
        size += len(chunk)
    return b"".join(head)[:limit]


def _accepted_body(result: IngestResult) -> TelemetryResponse:
    errors = result.errors[:MAX_RESPONSE_ERRORS]
    return TelemetryResponse(
        accepted=result.accepted,
        rejected=result.rejected,
        errors=errors,
        errors_truncated=len(result.errors) - len(errors),
    )


def error_response(
    status: int, code: str, message: str, retry_after_s: int | None = None
) -> Response:
    """Build a JSON error response, with a Retry-After header if ``retry_after_s`` is set."""
    headers = None if retry_after_s is None else {"Retry-After": str(retry_after_s)}
    body = _ENCODER.encode(ErrorResponse(ErrorDetail(code, message)))
    return Response(body, status_code=status, media_type=_JSON, headers=headers)


def _client(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "unknown"
