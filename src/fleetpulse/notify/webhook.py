"""Webhook delivery: one signed HTTP POST per attempt.

The signature header is ``X-Fleetpulse-Signature: sha256=<hex>``, the HMAC-SHA256 of the
raw request body keyed with the rule's ``webhook_secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlsplit, urlunsplit

import httpx

from fleetpulse import __version__
from fleetpulse.notify.errors import DeliveryError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Fleetpulse-Signature"
# Statuses after which the same request may succeed: timeout, rate limit, server faults.
RETRIABLE_STATUSES = frozenset({408, 425, 429})


def redact_url(url: str) -> str:
    """Return ``url`` without its credentials and query, for responses, dead letters and logs.

    Chat and automation services put their secret token in the webhook URL itself, in
    the user part or the query, so neither may leave the process.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username is not None or parts.password is not None:
        host = f"***@{host}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def sign_body(secret: str, body: bytes) -> str:
    """Return the signature header value of ``body``: ``sha256=`` and the hex HMAC."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def post_webhook(
    client: httpx.AsyncClient, url: str, secret: str, body: bytes, timeout_s: float
) -> None:
    """POST ``body`` to ``url``. Raises DeliveryError unless the receiver responds with 2xx."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"fleetpulse/{__version__}",
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign_body(secret, body)
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.TransportError as exc:
        raise DeliveryError(f"POST {redact_url(url)} failed: {exc!r}", retriable=True) from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    retriable = status >= 500 or status in RETRIABLE_STATUSES
    raise DeliveryError(f"POST {redact_url(url)} returned HTTP {status}", retriable=retriable)
