"""The HTTP ingest route: ``POST /v1/telemetry``.

Responses, all JSON:

- 202 ``{"accepted": N, "rejected": M, "errors": [...], "errors_truncated": K}`` once the
  accepted records are durable in the queue. ``errors`` lists at most
  ``MAX_RESPONSE_ERRORS`` rejected records and ``errors_truncated`` counts the rest.
- 400 invalid JSON, 408 (code ``request_timeout``) when the body takes longer than
  ``[ingest] body_timeout_s``, 413 body or batch too large, 415 missing or unsupported
  Content-Type, 503 with ``Retry-After`` when the queue is full, its disk is full,
  ingest is overloaded or a backend is unavailable, 500 on a server bug. The body is
  ``{"error": {"code": ..., "message": ...}}``.
- 429 with ``Retry-After`` and code ``rate_limited`` when a device of the batch is over
  ``[ingest] device_rate_records_per_s``; nothing of the batch is published then.

With ``[auth] enabled`` the auth middleware has checked the device token or admin key.
Records of devices that a device token does not cover are rejected one by one with
reason ``device_not_allowed``, like records that fail validation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from fleetpulse.auth.devices import IngestGuard
from fleetpulse.auth.middleware import SCOPE_CREDENTIAL
from fleetpulse.auth.ratelimit import RateDecision
from fleetpulse.errors import FleetpulseError, OverloadedError, QueueFullError, StorageFullError
from fleetpulse.ingest.service import (
    Admission,
    IngestRequestError,
    IngestResult,
    IngestService,
    RecordError,
)
from fleetpulse.model.vocabulary import (
    ERROR_INTERNAL,
    ERROR_OVERLOADED,
    ERROR_QUEUE_FULL,
    ERROR_STORAGE_FULL,
    ERROR_UNAVAILABLE,
    RATE_LIMITED,
    SOURCE_HTTP,
    TOO_LARGE,
)

log = logging.getLogger(__name__)

TELEMETRY_PATH: Final = "/v1/telemetry"
# A client fixing its records needs a sample of the errors, not all 10,000 of a batch.
MAX_RESPONSE_ERRORS: Final = 100
ERROR_REQUEST_TIMEOUT: Final = "request_timeout"
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


class _BodyTimeout(Exception):
    def __init__(self, received_bytes: int) -> None:
        super().__init__(f"body not received in time after {received_bytes} bytes")
        self.received_bytes = received_bytes


class _RateLimited(Exception):
    def __init__(self, decision: RateDecision, message: str) -> None:
        super().__init__(message)
        self.decision = decision
        self.message = message


def telemetry_routes(service: IngestService) -> list[Route]:
    """Build the ``POST /v1/telemetry`` route that feeds ``service``."""
    guard = IngestGuard.shared(service, service.settings)

    async def post_telemetry(request: Request) -> Response:
        return await _handle_telemetry(service, guard, request)

    return [Route(TELEMETRY_PATH, post_telemetry, methods=["POST"])]


async def _handle_telemetry(
    service: IngestService, guard: IngestGuard, request: Request
) -> Response:
    content_type = request.headers.get("content-type")
    retry_after_s = service.settings.ingest.retry_after_s
    try:
        await service.check_content_type(content_type, SOURCE_HTTP)
        with service.admit(0, SOURCE_HTTP) as admission:
            body = await _read_body(service, request, admission)
            result = await _ingest(service, guard, request, body, content_type)
    except _BodyTimeout as exc:
        timeout_s = service.settings.ingest.body_timeout_s
        log.info(
            "request body timed out, responding with 408 client=%s received_bytes=%d "
            "content_length=%s body_timeout_s=%g",
            _client(request),
            exc.received_bytes,
            request.headers.get("content-length", "none"),
            timeout_s,
        )
        message = (
            f"the body was not received within {timeout_s:g} s ([ingest] body_timeout_s); "
            "send it again, in smaller batches on a slow link"
        )
        return _closing(error_response(408, ERROR_REQUEST_TIMEOUT, message))
    except IngestRequestError as exc:
        return error_response(exc.status, exc.reason, exc.message)
    except _RateLimited as exc:
        return error_response(429, RATE_LIMITED, exc.message, exc.decision.retry_after_s)
    except QueueFullError:
        message = f"the queue is full; send the same request again after {retry_after_s} s"
        return error_response(503, ERROR_QUEUE_FULL, message, retry_after_s)
    except OverloadedError:
        message = (
            "ingest is overloaded by requests in progress; send the same request again "
            f"after {retry_after_s} s"
        )
        # The body may be only partly read, so the connection cannot serve another request.
        return _closing(error_response(503, ERROR_OVERLOADED, message, retry_after_s))
    except StorageFullError:
        # The service has counted and logged it. No record of the request was kept.
        message = (
            "the server's disk is full, so no record of the request was kept; send the same "
            f"request again after {retry_after_s} s"
        )
        return error_response(503, ERROR_STORAGE_FULL, message, retry_after_s)
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


async def _ingest(
    service: IngestService,
    guard: IngestGuard,
    request: Request,
    body: bytes,
    content_type: str | None,
) -> IngestResult:
    """Ingest a body, applying the device check and the rate limit when either is on.

    Raises _RateLimited after writing one dead letter for the rejected request.
    """
    if not guard.active:
        return await service.ingest_body(body, content_type, SOURCE_HTTP)

    batch, received_at_ms = await service.decode(body, content_type, SOURCE_HTTP)

    guarded = guard.filter_devices(
        batch.records, batch.rejects, request.scope.get(SCOPE_CREDENTIAL)
    )
    decision = guard.take(guarded.records)
    if not decision.admitted:
        devices = sorted(decision.limited_devices)
        message = (
            f"device {devices[0]!r} sends more than {guard.limiter.rate_per_s:g} records/s "
            f"([ingest] device_rate_records_per_s); nothing of this request was accepted, so "
            f"send it again after {decision.retry_after_s} s"
        )
        log.info(
            "request rate limited client=%s devices=%d first_device=%s retry_after_s=%d",
            _client(request),
            len(devices),
            devices[0],
            decision.retry_after_s,
        )
        await service.reject_request(
            RATE_LIMITED,
            message,
            body[: service.settings.ingest.dead_letter_raw_bytes],
            SOURCE_HTTP,
            received_at_ms=received_at_ms,
            device_id=devices[0],
        )
        raise _RateLimited(decision, message)
    return await service.ingest_records(
        guarded.records, guarded.rejects, SOURCE_HTTP, received_at_ms=received_at_ms
    )


def _internal_error(request: Request) -> Response:
    # Called from an except block, so log.exception records the active traceback. Every
    # error body is JSON, even a bug's, where Starlette's default 500 is plain text.
    log.exception("ingest failed with an unexpected error client=%s", _client(request))
    message = "internal error while ingesting; the server log has the traceback"
    return error_response(500, ERROR_INTERNAL, message)


async def _read_body(service: IngestService, request: Request, admission: Admission) -> bytes:
    """Read the body, stopping as soon as it exceeds ``ingest.max_body_bytes``.

    The limit is checked against Content-Length before reading and against the bytes
    received while streaming, so reading keeps at most the limit plus one chunk in memory.
    Each chunk is counted in ``admission`` as it arrives (OverloadedError past
    ``ingest.max_inflight_bytes``). Raises _BodyTimeout when the whole body takes longer
    than ``ingest.body_timeout_s``.
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
    try:
        async with asyncio.timeout(service.settings.ingest.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    break
                admission.receive(len(chunk))
                chunks.append(chunk)
    except TimeoutError:
        raise _BodyTimeout(size) from None
    if size > max_bytes:
        message = (
            f"the body is more than {max_bytes} bytes; at most {max_bytes} are accepted "
            "(ingest.max_body_bytes), so split the batch"
        )
        head = _head(chunks, service.settings.ingest.dead_letter_raw_bytes)
        raise await service.reject_request(TOO_LARGE, message, head, SOURCE_HTTP)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _closing(response: Response) -> Response:
    """Ask uvicorn to close the connection after ``response``, sent before the whole body.

    Otherwise the rest of the body would be read as the start of the next request.
    """
    response.headers["Connection"] = "close"
    return response


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
