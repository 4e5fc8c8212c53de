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

The route's endpoint is a raw ASGI handler, without Starlette's Request and Response
objects, because at one record per request their cost per request is as large as the
ingest work itself. ``TelemetryFastPath`` serves the route in front of the router and
its exception middleware as well. Both run the same handler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import msgspec
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fleetpulse.auth.devices import IngestGuard
from fleetpulse.auth.middleware import SCOPE_CREDENTIAL
from fleetpulse.auth.ratelimit import RateDecision
from fleetpulse.errors import FleetpulseError, OverloadedError, QueueFullError, StorageFullError
from fleetpulse.ingest.decode import BodyError, body_format
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
_CONTENT_TYPE_JSON: Final = (b"content-type", b"application/json")
_CONNECTION_CLOSE: Final = (b"connection", b"close")
# Maximum delay, in seconds, of a body timeout past ``[ingest] body_timeout_s``.
MAX_DEADLINE_TICK_S: Final = 1.0


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


class _ClientDisconnected(Exception):
    """The client closed the connection before it sent the whole body."""


class _RateLimited(Exception):
    def __init__(self, decision: RateDecision, message: str) -> None:
        super().__init__(message)
        self.decision = decision
        self.message = message


class _Reply:
    """A response as raw ASGI headers, with the headers Starlette's ``Response`` sets."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        retry_after_s: int | None = None,
        *,
        json: bool = True,
        close: bool = False,
    ) -> None:
        headers: list[tuple[bytes, bytes]] = []
        if retry_after_s is not None:
            headers.append((b"retry-after", str(retry_after_s).encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        if json:
            headers.append(_CONTENT_TYPE_JSON)
        if close:
            # uvicorn closes the connection after a response with this header. A response
            # sent before the whole body needs it, or the rest of the body would be read
            # as the start of the next request.
            headers.append(_CONNECTION_CLOSE)
        self.status = status
        self.body = body
        self.headers = headers

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


class _Deadline:
    """The body deadline of one request: ``expire`` cancels the task reading the body."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        self.task.cancel()


class _BodyDeadlines:
    """The deadlines of the requests reading a body, checked by one timer every tick.

    A timer per request costs about 2 us of event loop time with ``call_later`` and 9 us
    with ``asyncio.timeout`` (uvloop on a loaded 2-core VM), as much as decoding a record.
    Here a request adds its deadline to a dict and removes it when done. So a body times
    out between ``timeout_s`` and ``timeout_s`` plus one tick, which is an eighth of
    ``timeout_s`` and at most ``MAX_DEADLINE_TICK_S``.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.tick_s = min(MAX_DEADLINE_TICK_S, timeout_s / 8)
        self._reading: dict[_Deadline, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, task: asyncio.Task[Any]) -> _Deadline:
        loop = task.get_loop()
        if loop is not self._loop:
            # A new event loop, as in tests: the old one's timer and requests are gone.
            self._loop = loop
            self._timer = None
            self._reading.clear()
        deadline = _Deadline(task)
        self._reading[deadline] = loop.time() + self.timeout_s
        if self._timer is None:
            self._timer = loop.call_later(self.tick_s, self._expire_due, loop)
        return deadline

    def finish(self, deadline: _Deadline) -> None:
        self._reading.pop(deadline, None)

    def _expire_due(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return
        now = loop.time()
        due = [deadline for deadline, at in self._reading.items() if at <= now]
        for deadline in due:
            del self._reading[deadline]
            deadline.expire()
        self._timer = (
            loop.call_later(self.tick_s, self._expire_due, loop) if self._reading else None
        )


class TelemetryEndpoint:
    """The ASGI handler of ``POST /v1/telemetry`` that feeds ``service``."""

    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.guard = IngestGuard.shared(service, service.settings)
        ingest = service.settings.ingest
        self._max_body_bytes = ingest.max_body_bytes
        self._body_timeout_s = ingest.body_timeout_s
        self._deadlines = _BodyDeadlines(ingest.body_timeout_s)
        self._retry_after_s = ingest.retry_after_s
        self._dead_letter_raw_bytes = ingest.dead_letter_raw_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reply = await self._respond(scope, receive)
        await reply.send(send)

    async def _respond(self, scope: Scope, receive: Receive) -> _Reply:
        content_type, content_length = _request_headers(scope)
        service = self.service
        retry_after_s = self._retry_after_s
        try:
            if not _accepted_content_type(content_type):
                await service.check_content_type(content_type, SOURCE_HTTP)
            with service.admit(0, SOURCE_HTTP) as admission:
                body = await self._read_body(receive, content_length, admission)
                result = await self._ingest(scope, body, content_type)
        except _BodyTimeout as exc:
            timeout_s = self._body_timeout_s
            log.info(
                "request body timed out, responding with 408 client=%s received_bytes=%d "
                "content_length=%s body_timeout_s=%g",
                _client(scope),
                exc.received_bytes,
                content_length or "none",
                timeout_s,
            )
            message = (
                f"the body was not received within {timeout_s:g} s ([ingest] body_timeout_s); "
                "send it again, in smaller batches on a slow link"
            )
            return _error_reply(408, ERROR_REQUEST_TIMEOUT, message, close=True)
        except IngestRequestError as exc:
            return _error_reply(exc.status, exc.reason, exc.message)
        except _RateLimited as exc:
            return _error_reply(429, RATE_LIMITED, exc.message, exc.decision.retry_after_s)
        except QueueFullError:
            message = f"the queue is full; send the same request again after {retry_after_s} s"
            return _error_reply(503, ERROR_QUEUE_FULL, message, retry_after_s)
        except OverloadedError:
            message = (
                "ingest is overloaded by requests in progress; send the same request again "
                f"after {retry_after_s} s"
            )
            # The body may be only partly read, so the connection cannot serve another request.
            return _error_reply(503, ERROR_OVERLOADED, message, retry_after_s, close=True)
        except StorageFullError:
            # The service has counted and logged it. No record of the request was kept.
            message = (
                "the server's disk is full, so no record of the request was kept; send the "
                f"same request again after {retry_after_s} s"
            )
            return _error_reply(503, ERROR_STORAGE_FULL, message, retry_after_s)
        except _ClientDisconnected:
            # uvicorn drops a response to a closed connection; the 400 is for other servers.
            log.debug("client %s disconnected before sending the whole body", _client(scope))
            return _Reply(400, b"", json=False)
        except FleetpulseError as exc:
            if exc.retriable:
                log.error("ingest failed, responding with 503 client=%s: %s", _client(scope), exc)
                message = (
                    f"ingest is unavailable ({exc}); send the same request again after "
                    f"{retry_after_s} s"
                )
                return _error_reply(503, ERROR_UNAVAILABLE, message, retry_after_s)
            return _internal_error(scope)
        except Exception:
            return _internal_error(scope)

        return _Reply(202, _ENCODER.encode(_accepted_body(result)))

    async def _ingest(self, scope: Scope, body: bytes, content_type: str | None) -> IngestResult:
        """Ingest a body, applying the device check and the rate limit when either is on.

        Raises _RateLimited after writing one dead letter for the rejected request.
        """
        service = self.service
        guard = self.guard
        if not guard.active:
            return await service.ingest_body(body, content_type, SOURCE_HTTP)

        batch, received_at_ms = await service.decode(body, content_type, SOURCE_HTTP)

        guarded = guard.filter_devices(batch.records, batch.rejects, scope.get(SCOPE_CREDENTIAL))
        decision = guard.take(guarded.records)
        if not decision.admitted:
            devices = sorted(decision.limited_devices)
            message = (
                f"device {devices[0]!r} sends more than {guard.limiter.rate_per_s:g} "
                "records/s ([ingest] device_rate_records_per_s); nothing of this request was "
                f"accepted, so send it again after {decision.retry_after_s} s"
            )
            log.info(
                "request rate limited client=%s devices=%d first_device=%s retry_after_s=%d",
                _client(scope),
                len(devices),
                devices[0],
                decision.retry_after_s,
            )
            await service.reject_request(
                RATE_LIMITED,
                message,
                body[: self._dead_letter_raw_bytes],
                SOURCE_HTTP,
                received_at_ms=received_at_ms,
                device_id=devices[0],
            )
            raise _RateLimited(decision, message)
        return await service.ingest_records(
            guarded.records, guarded.rejects, SOURCE_HTTP, received_at_ms=received_at_ms
        )

    async def _read_body(
        self, receive: Receive, content_length: str | None, admission: Admission
    ) -> bytes:
        """Read the body, stopping as soon as it exceeds ``ingest.max_body_bytes``.

        The limit is checked against Content-Length before reading and against the bytes
        received while streaming, so reading keeps at most the limit plus one chunk in
        memory. Each chunk is counted in ``admission`` as it arrives (OverloadedError past
        ``ingest.max_inflight_bytes``). Raises _BodyTimeout when the whole body takes
        longer than ``ingest.body_timeout_s`` and _ClientDisconnected when the client
        closes the connection first.
        """
        max_bytes = self._max_body_bytes
        if content_length is not None and content_length.isdigit():
            if int(content_length) > max_bytes:
                message = (
                    f"the body is {content_length} bytes (Content-Length); at most "
                    f"{max_bytes} are accepted (ingest.max_body_bytes), so split the batch"
                )
                raise await self.service.reject_request(TOO_LARGE, message, b"", SOURCE_HTTP)

        task = asyncio.current_task()
        assert task is not None, "the ASGI server runs each request in a task"
        cancelling = task.cancelling()
        deadline = self._deadlines.start(task)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                event = await receive()
                kind = event["type"]
                if kind == "http.request":
                    chunk: bytes = event.get("body", b"")
                    if chunk:
                        size += len(chunk)
                        if size > max_bytes:
                            break
                        admission.receive(len(chunk))
                        chunks.append(chunk)
                    if not event.get("more_body", False):
                        break
                elif kind == "http.disconnect":
                    raise _ClientDisconnected
        except asyncio.CancelledError:
            # The same test as asyncio.timeout: only a cancellation by the deadline, and
            # not one requested by someone else as well, becomes a timeout.
            if deadline.expired and task.uncancel() <= cancelling:
                raise _BodyTimeout(size) from None
            raise
        finally:
            self._deadlines.finish(deadline)

        if size > max_bytes:
            message = (
                f"the body is more than {max_bytes} bytes; at most {max_bytes} are accepted "
                "(ingest.max_body_bytes), so split the batch"
            )
            head = _head(chunks, self._dead_letter_raw_bytes)
            raise await self.service.reject_request(TOO_LARGE, message, head, SOURCE_HTTP)
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)


class TelemetryFastPath:
    """ASGI middleware that sends ``POST /v1/telemetry`` straight to its endpoint.

    It skips the router's matching and Starlette's exception middleware, which the
    endpoint does not need because it turns every error into a JSON response itself.
    Every other request, and any request under a ``root_path``, goes on to ``app``.
    Place it after the auth middleware, which must still check the request.
    """

    def __init__(self, app: ASGIApp, endpoint: TelemetryEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == TELEMETRY_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.endpoint(scope, receive, send)
            return
        await self.app(scope, receive, send)


def telemetry_routes(service: IngestService) -> list[Route]:
    """Build the ``POST /v1/telemetry`` route that feeds ``service``."""
    endpoint = TelemetryEndpoint(service)
    return [Route(TELEMETRY_PATH, endpoint, methods=["POST"], name="post_telemetry")]


def telemetry_fast_path(routes: list[BaseRoute]) -> list[Middleware]:
    """Return the ``TelemetryFastPath`` middleware for the telemetry route of ``routes``.

    Returns an empty list when ``routes`` has no route built by ``telemetry_routes``.
    """
    for route in routes:
        if isinstance(route, Route) and isinstance(route.endpoint, TelemetryEndpoint):
            return [Middleware(TelemetryFastPath, endpoint=route.endpoint)]
    return []


def _request_headers(scope: Scope) -> tuple[str | None, str | None]:
    """Return the first Content-Type and Content-Length of the request, or None each.

    ASGI servers pass header names in lower case.
    """
    content_type: str | None = None
    content_length: str | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value.decode("latin-1")
        elif name == b"content-length" and content_length is None:
            content_length = value.decode("latin-1")
    return content_type, content_length


def _accepted_content_type(content_type: str | None) -> bool:
    """Return whether ingest accepts the Content-Type, without the await of the service."""
    try:
        body_format(content_type)
    except BodyError:
        return False
    return True


def _internal_error(scope: Scope) -> _Reply:
    # Called from an except block, so log.exception records the active traceback. Every
    # error body is JSON, even a bug's, where Starlette's default 500 is plain text.
    log.exception("ingest failed with an unexpected error client=%s", _client(scope))
    message = "internal error while ingesting; the server log has the traceback"
    return _error_reply(500, ERROR_INTERNAL, message)


def _error_reply(
    status: int,
    code: str,
    message: str,
    retry_after_s: int | None = None,
    *,
    close: bool = False,
) -> _Reply:
    body = _ENCODER.encode(ErrorResponse(ErrorDetail(code, message)))
    return _Reply(status, body, retry_after_s, close=close)


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


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"
