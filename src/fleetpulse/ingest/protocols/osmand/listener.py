"""The OsmAnd HTTP listener: an ASGI app on its own uvicorn server and port.

Any method and any path are accepted, as Traccar does. The parameters come from the query
string, or from a form body when the query string is empty; a body with Content-Type
``application/json`` is the JSON form of newer Traccar Client versions.

With ``[auth] enabled`` a request may carry a device token in a ``token`` parameter or
an ``Authorization: Bearer`` header. Parameter names are compared after percent-decoding
and in any case, as the decoder reads them, so ``TOKEN=`` and ``%74oken=`` are the same
parameter. Every parameter named like a credential (``auth.redact.SECRET_PARAMETERS``) is
left out of the record and has its value replaced by ``REDACTED`` in frame logs and dead
letters, so none is ever stored. Without a token, the device id must be listed by a
device token in the key file, unless ``[osmand] require_token`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Final
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from fleetpulse.auth.devices import IngestGuard
from fleetpulse.auth.redact import REDACTED, is_secret_parameter
from fleetpulse.auth.tls import tls_files
from fleetpulse.config import Settings
from fleetpulse.errors import FleetpulseError, QueueFullError
from fleetpulse.httpserve import bind_tcp, start_uvicorn
from fleetpulse.ingest.http import error_response
from fleetpulse.ingest.protocols.base import ProtocolListener, register
from fleetpulse.ingest.protocols.osmand import answers
from fleetpulse.ingest.protocols.osmand.decoding import (
    OsmandRequestError,
    decode_parameters,
    parse_parameters,
)
from fleetpulse.ingest.protocols.osmand.framelog import FrameLog
from fleetpulse.ingest.protocols.osmand.json_body import decode_json_body
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import Reject, validate_record
from fleetpulse.model.vocabulary import (
    DEVICE_NOT_ALLOWED,
    RATE_LIMITED,
    SOURCE_OSMAND,
    TOO_LARGE,
    UNAUTHORIZED,
)

log = logging.getLogger(__name__)

# One position with its parameters is under 1 KiB; 64 KiB bounds memory per request.
MAX_BODY_BYTES: Final = 64 * 1024
_JSON_MEDIA_TYPE: Final = "application/json"
TOKEN_PARAMETER: Final = "token"
# HTTP status of each reject reason that is not 400.
_REJECT_STATUS: Final = {
    TOO_LARGE: answers.STATUS_TOO_LARGE,
    UNAUTHORIZED: 401,
    DEVICE_NOT_ALLOWED: 403,
    RATE_LIMITED: 429,
}


@register
class OsmandListener(ProtocolListener):
    """Receives one position per HTTP request and responds 200 once it is durable."""

    name = "osmand"

    def __init__(self, settings: Settings, ingest: IngestService) -> None:
        super().__init__(settings, ingest)
        self._frames = FrameLog(log, self.settings.osmand.log_frames)
        self.guard = IngestGuard.shared(ingest, settings)
        osmand = settings.osmand
        self._tls = tls_files("osmand", osmand.tls_cert_file, osmand.tls_key_file)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Return the bound host and port; the port differs from the setting when it was 0."""
        if self._socket is None:
            raise RuntimeError("OsmAnd listener not started")
        host, port = self._socket.getsockname()[:2]
        return host, port

    async def start(self) -> None:
        osmand = self.settings.osmand
        self._socket = bind_tcp(
            osmand.host,
            osmand.port,
            "set [osmand] port to a free port or stop the process using it",
        )
        # A bound method hides its arity, so uvicorn would guess ASGI 2.
        self._server, self._task = await start_uvicorn(
            self._app,
            self._socket,
            "fleetpulse-osmand",
            interface="asgi3",
            tls=self._tls,
            limit_concurrency=osmand.max_connections,
        )
        host, port = self.address
        log.info(
            "osmand listener started host=%s port=%d tls=%s auth=%s",
            host,
            port,
            self._tls is not None,
            self.guard.keys is not None,
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
            log.info("osmand listener stopped")

    def describe(self) -> str:
        host, port = self.address
        scheme = "https" if self._tls is not None else "http"
        return f"OsmAnd (Traccar Client) HTTP on {scheme}://{host}:{port}/"

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self._handle(request)
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        received_at_ms = now_ms()
        peer = _peer(request)
        try:
            body = await _read_body(request)
        except ClientDisconnect:
            log.debug("osmand client disconnected before sending the body peer=%s", peer)
            return Response(status_code=400)
        query = request.scope.get("query_string", b"")
        if query or not _is_json(request):
            parameter_token, raw = _scan_parameters(query if query else body)
        else:
            parameter_token, raw = None, body
        token = _header_token(request) or parameter_token
        self._frames.frame("in", peer, raw)

        record_in: RecordIn | None = None
        reject: Reject | None = None
        if len(body) > MAX_BODY_BYTES:
            detail = f"the body is more than {MAX_BODY_BYTES} bytes; send one position per request"
            reject = Reject(0, TOO_LARGE, detail)
        else:
            try:
                record_in = self._decode(request, query, body, received_at_ms)
            except OsmandRequestError as exc:
                reject = Reject(0, exc.reason, exc.detail, device_id=exc.device_id)
        retry_after_s: int | None = None
        if record_in is not None:
            reject, retry_after_s = self._authorize(str(record_in.device_id), token, peer)
            if reject is not None:
                record_in = None
        return await self._ingest(record_in, reject, raw, received_at_ms, peer, retry_after_s)

    def _authorize(
        self, device_id: str, token: str | None, peer: str
    ) -> tuple[Reject | None, int | None]:
        """Check the sender and the rate limit; return a reject and its Retry-After, if any."""
        guard = self.guard
        if guard.keys is not None:
            credential = None
            if token is not None:
                credential = guard.keys.authenticate(token)
                if credential is None:
                    detail = "the token is invalid or revoked; ask an operator for a device token"
                    return Reject(0, UNAUTHORIZED, detail, device_id=device_id), None
                if not credential.grants("device"):
                    detail = (
                        f"key {credential.key_id} has scope {credential.scope}, but sending "
                        "records needs a device token or an admin key; ask an operator to "
                        f"run `fleetpulse keys create --device {device_id}`"
                    )
                    log.info(
                        "osmand key with the wrong scope rejected peer=%s device=%s key_id=%s "
                        "scope=%s",
                        peer,
                        device_id,
                        credential.key_id,
                        credential.scope,
                    )
                    return Reject(0, DEVICE_NOT_ALLOWED, detail, device_id=device_id), None
            elif self.settings.osmand.require_token:
                detail = (
                    "this server requires a device token: add &token=<device token> to the "
                    "server URL of the device"
                )
                return Reject(0, UNAUTHORIZED, detail, device_id=device_id), None
            if not guard.device_allowed(device_id, credential):
                detail = (
                    f"device {device_id!r} has no device token on this server; ask an "
                    f"operator to run `fleetpulse keys create --device {device_id}`"
                )
                log.info("osmand device rejected peer=%s device=%s", peer, device_id)
                return Reject(0, DEVICE_NOT_ALLOWED, detail, device_id=device_id), None
        decision = guard.limiter.take({device_id: 1})
        if decision.admitted:
            return None, None
        detail = (
            f"device {device_id!r} sends more than {guard.limiter.rate_per_s:g} records/s; "
            f"send it again after {decision.retry_after_s} s"
        )
        return Reject(0, RATE_LIMITED, detail, device_id=device_id), decision.retry_after_s

    def _decode(self, request: Request, query: bytes, body: bytes, received_at_ms: int) -> RecordIn:
        if not query and _is_json(request):
            return decode_json_body(body)
        text = (query if query else body).decode("utf-8", errors="replace")
        # decode_parameters leaves the token and other credential parameters out.
        params = parse_parameters(text)
        return decode_parameters(params, received_at_ms, self.settings.osmand.speed_unit)

    async def _ingest(
        self,
        record_in: RecordIn | None,
        reject: Reject | None,
        raw: bytes,
        received_at_ms: int,
        peer: str,
        retry_after_s: int | None = None,
    ) -> Response:
        records: list[Record] = []
        if record_in is not None:
            result = validate_record(record_in, received_at_ms, self.settings, source=SOURCE_OSMAND)
            if isinstance(result, Record):
                records.append(result)
            else:
                reject = result
        rejects: list[Reject] = []
        if reject is not None:
            # The request as received helps more in a dead letter than the RecordIn built from it.
            reject.raw = raw[: self.settings.ingest.dead_letter_raw_bytes]
            rejects.append(reject)
            log.debug(
                "osmand record rejected peer=%s device=%s reason=%s: %s",
                peer,
                reject.device_id,
                reject.reason,
                reject.detail,
            )

        busy_retry_after_s = self.settings.ingest.retry_after_s
        try:
            await self.ingest.ingest_records(
                records, rejects, SOURCE_OSMAND, received_at_ms=received_at_ms
            )
        except QueueFullError:
            return answers.queue_full(busy_retry_after_s)
        except FleetpulseError as exc:
            if not exc.retriable:
                log.exception("osmand ingest failed peer=%s", peer)
                return answers.internal_error()
            log.error("osmand ingest failed, responding with 503 peer=%s: %s", peer, exc)
            return answers.unavailable(exc, busy_retry_after_s)
        except Exception:
            log.exception("osmand ingest failed with an unexpected error peer=%s", peer)
            return answers.internal_error()

        if reject is not None:
            status = _REJECT_STATUS.get(reject.reason, answers.STATUS_REJECTED)
            return error_response(status, reject.reason, reject.detail, retry_after_s)
        return answers.accepted()


async def _read_body(request: Request) -> bytes:
    """Read at most MAX_BODY_BYTES plus one chunk, so a longer body is detected, not stored."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
    return b"".join(chunks)


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == _JSON_MEDIA_TYPE


def _header_token(request: Request) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _scan_parameters(parameters: bytes) -> tuple[str | None, bytes]:
    """Return the ``token`` parameter and the parameters with every credential redacted.

    Names are percent-decoded and compared in any case, as the decoder reads them. When a
    credential parameter is present, the redacted parameters are encoded again, so the
    log and the dead letter show ``token=REDACTED`` whatever form the client sent.
    Otherwise the bytes are returned as received.
    """
    text = parameters.decode("utf-8", errors="replace")
    # Not capped at MAX_PARAMETERS: the decoder rejects too many, and the redacted copy
    # must still hide every credential of such a request.
    pairs = parse_qsl(text, keep_blank_values=True)
    secret_names = {name for name, _ in pairs if is_secret_parameter(name)}
    if not secret_names:
        return None, parameters
    token = None
    for name, value in pairs:
        if name.strip().lower() == TOKEN_PARAMETER and value:
            token = value
    redacted = [(name, REDACTED if name in secret_names else value) for name, value in pairs]
    return token, urlencode(redacted).encode()


def _peer(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "unknown"
