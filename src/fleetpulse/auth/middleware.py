"""The ASGI middleware that checks API keys against the route policy.

HTTP clients send ``Authorization: Bearer <token>``. Browsers cannot set headers on a
WebSocket, so ``/v1/live`` also takes the token as a subprotocol: the client offers
``fleetpulse`` and ``fleetpulse.bearer.<token>``, and the server selects ``fleetpulse``.
A subprotocol travels in a header, which access logs and proxies do not record by
default, unlike a query parameter.

A rejected HTTP request gets 401 (no key, or an invalid or revoked one) or 403 (a valid
key without the scope), with a JSON error and ``WWW-Authenticate`` as in RFC 6750. A
rejected WebSocket is accepted only to send an error frame and close with 4401 or 4403,
because a browser cannot read the status of a failed handshake.

The accepted credential is put in the ASGI scope under ``SCOPE_CREDENTIAL``, where the
ingest route reads which devices a device token covers.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import msgspec
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetpulse import metrics
from fleetpulse.auth.keyfile import KeyStore, key_file_path
from fleetpulse.auth.policy import WEBSOCKET, Access, access_for
from fleetpulse.auth.tokens import Credential
from fleetpulse.auth.tokens import Scope as KeyScope
from fleetpulse.config import Settings

log = logging.getLogger(__name__)

SCOPE_CREDENTIAL: Final = "fleetpulse.credential"
SUBPROTOCOL: Final = "fleetpulse"
BEARER_SUBPROTOCOL_PREFIX: Final = "fleetpulse.bearer."
# Application close codes (4000-4999 in RFC 6455), mirroring HTTP 401 and 403.
CLOSE_UNAUTHORIZED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
# Rejections logged per second at most, because any client can cause them.
REJECTIONS_LOGGED_PER_S: Final = 5

_encoder = msgspec.json.Encoder()
# The key scope each non-public access rule requires.
_REQUIRED_SCOPE: Final[dict[Access, KeyScope]] = {
    Access.READ: "read",
    Access.ADMIN: "admin",
    Access.DEVICE: "device",
}


class _LogBudget:
    """Allows ``per_s`` log lines per one-second window and counts the ones it drops."""

    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self.window_start_s = 0.0
        self.used = 0
        self.suppressed = 0

    def allow(self) -> bool:
        now_s = time.monotonic()
        if now_s - self.window_start_s >= 1.0:
            self.window_start_s = now_s
            self.used = 0
        if self.used < self.per_s:
            self.used += 1
            return True
        self.suppressed += 1
        return False


class _Rejection(Exception):
    def __init__(self, status: int, reason: str, code: str, message: str, challenge: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.code = code
        self.message = message
        self.challenge = challenge


def auth_middleware(settings: Settings) -> Middleware:
    """Build the middleware entry for a Starlette app serving any fleetpulse routes.

    With ``[auth] enabled`` it loads the key file now. Raises KeyFileError when the file
    is invalid or readable by other users.
    """
    keys = None
    if settings.auth.enabled:
        keys = KeyStore(key_file_path(settings))
        keys.load()
        if keys.active_count == 0:
            log.warning(
                "authentication is on but %s has no active key, so every request that "
                "needs a key is rejected; create one with `fleetpulse keys create --scope admin`",
                keys.path,
            )
        else:
            log.info("authentication on: key_file=%s active_keys=%d", keys.path, keys.active_count)
    return Middleware(AuthMiddleware, keys=keys, metrics_public=settings.auth.metrics_public)


class AuthMiddleware:
    """Checks every HTTP and WebSocket request against ``ROUTE_POLICY``.

    ``keys`` None turns the checks off; the middleware then only selects the
    ``fleetpulse`` subprotocol, so that the dashboard's WebSocket works either way.
    """

    def __init__(self, app: ASGIApp, keys: KeyStore | None, metrics_public: bool = False) -> None:
        self.app = app
        self.keys = keys
        self.metrics_public = metrics_public
        self._rejection_log = _LogBudget(REJECTIONS_LOGGED_PER_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if kind == "websocket":
            send = _select_subprotocol(scope, send)
        if self.keys is None:
            await self.app(scope, receive, send)
            return

        access = self._access(scope)
        if access is not None and access is not Access.PUBLIC:
            try:
                scope[SCOPE_CREDENTIAL] = self._authorize(scope, access, self.keys)
            except _Rejection as rejection:
                self._log_rejection(scope, rejection)
                metrics.AUTH_REJECTED.labels(rejection.reason).inc()
                if kind == "http":
                    await _reject_http(send, rejection)
                else:
                    await _reject_websocket(receive, send, rejection)
                return
        await self.app(scope, receive, send)

    def _access(self, scope: Scope) -> Access | None:
        """Return the rule of the route that serves ``scope``, or None when none does.

        Requests that no route serves fully (404, 405) pass on to get their error.
        """
        template = _route_template(scope)
        if template is None:
            return None
        method = WEBSOCKET if scope["type"] == "websocket" else scope["method"]
        return access_for(template, method, self.metrics_public)

    def _authorize(self, scope: Scope, access: Access, keys: KeyStore) -> Credential:
        required = _REQUIRED_SCOPE[access]
        token = _bearer_token(scope)
        if token is None:
            raise _Rejection(
                401,
                "missing_key",
                "unauthorized",
                f"{_describe(scope)} requires {_key_kind(required)}; send it as "
                "Authorization: Bearer <token>. An operator creates one with "
                f"`fleetpulse keys create {_create_flags(required)}`",
                'Bearer realm="fleetpulse"',
            )
        credential = keys.authenticate(token)
        if credential is None:
            raise _Rejection(
                401,
                "invalid_key",
                "unauthorized",
                "the API key is invalid or revoked; ask an operator for a new one "
                "(`fleetpulse keys list` shows the active keys)",
                'Bearer realm="fleetpulse", error="invalid_token"',
            )
        if not credential.grants(required):
            raise _Rejection(
                403,
                "insufficient_scope",
                "forbidden",
                f"{_describe(scope)} requires {_key_kind(required)}, but key "
                f"{credential.key_id} has scope {credential.scope}; use a key with the "
                "required scope",
                f'Bearer realm="fleetpulse", error="insufficient_scope", scope="{required}"',
            )
        return credential

    def _log_rejection(self, scope: Scope, rejection: _Rejection) -> None:
        budget = self._rejection_log
        if not budget.allow():
            return
        suppressed, budget.suppressed = budget.suppressed, 0
        log.warning(
            "request rejected status=%d reason=%s client=%s request=%s%s",
            rejection.status,
            rejection.reason,
            _client(scope),
            _describe(scope),
            f" ({suppressed} similar lines suppressed)" if suppressed else "",
        )


def _route_template(scope: Scope) -> str | None:
    app = scope.get("app")
    routes: list[BaseRoute] = list(getattr(app, "routes", []))
    return _match(routes, scope, "")


def _match(routes: list[BaseRoute], scope: Scope, prefix: str) -> str | None:
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is not Match.FULL:
            continue
        if isinstance(route, Mount):
            return _match(list(route.routes), {**scope, **child_scope}, prefix + route.path)
        return prefix + str(getattr(route, "path", ""))
    return None


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    if scope["type"] == "websocket":
        for protocol in scope.get("subprotocols", []):
            if protocol.startswith(BEARER_SUBPROTOCOL_PREFIX):
                return str(protocol[len(BEARER_SUBPROTOCOL_PREFIX) :])
    return None


def _select_subprotocol(scope: Scope, send: Send) -> Send:
    """Select ``fleetpulse`` in the handshake when the client offers it.

    A browser that offered subprotocols fails the connection unless the server selects
    one, and the bearer subprotocol must never be echoed back.
    """
    if SUBPROTOCOL not in scope.get("subprotocols", []):
        return send

    async def send_with_subprotocol(message: Message) -> None:
        if message["type"] == "websocket.accept" and not message.get("subprotocol"):
            message = {**message, "subprotocol": SUBPROTOCOL}
        await send(message)

    return send_with_subprotocol


async def _reject_http(send: Send, rejection: _Rejection) -> None:
    body = _encoder.encode({"error": {"code": rejection.code, "message": rejection.message}})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", rejection.challenge.encode()),
    ]
    await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reject_websocket(receive: Receive, send: Send, rejection: _Rejection) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    code = CLOSE_UNAUTHORIZED if rejection.status == 401 else CLOSE_FORBIDDEN
    frame = {"type": "error", "error": {"code": rejection.code, "message": rejection.message}}
    # RFC 6455 allows at most 123 bytes of reason in a close frame.
    reason = rejection.message.encode()[:123].decode(errors="ignore")
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": _encoder.encode(frame).decode()})
    await send({"type": "websocket.close", "code": code, "reason": reason})


def _describe(scope: Scope) -> str:
    method = "WebSocket" if scope["type"] == "websocket" else scope.get("method", "")
    return f"{method} {scope.get('path', '')}"


def _client(scope: Scope) -> str:
    client: Any = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


def _key_kind(scope: KeyScope) -> str:
    if scope == "device":
        return "a device token or an admin key"
    return f"an API key with scope {scope}" + (" or admin" if scope == "read" else "")


def _create_flags(scope: KeyScope) -> str:
    return "--device ID" if scope == "device" else f"--scope {scope}"
