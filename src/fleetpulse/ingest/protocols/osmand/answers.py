"""The HTTP responses of the OsmAnd listener.

Traccar Client only looks at the status: 200 deletes the position from its buffer, any
other status keeps it for the next attempt. So 200 is sent only once the record is
durable, and a rejected record gets 400, which the client will keep retrying until the
user fixes the setting that the message names.
"""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

from fleetpulse.ingest.http import error_response
from fleetpulse.model.vocabulary import ERROR_INTERNAL, ERROR_QUEUE_FULL, ERROR_UNAVAILABLE

STATUS_OK: Final = 200
STATUS_REJECTED: Final = 400
STATUS_TOO_LARGE: Final = 413


def accepted() -> Response:
    """Build the 200 response for a record that is durable in the queue."""
    return Response(status_code=STATUS_OK)


def rejected(reason: str, detail: str, status: int = STATUS_REJECTED) -> Response:
    """Build the 400 (or ``status``) response for a record or request that was rejected."""
    return error_response(status, reason, detail)


def queue_full(retry_after_s: int) -> Response:
    """Build the 503 response with Retry-After for a full queue."""
    message = f"the queue is full; send the same request again after {retry_after_s} s"
    return error_response(503, ERROR_QUEUE_FULL, message, retry_after_s)


def unavailable(error: Exception, retry_after_s: int) -> Response:
    """Build the 503 response for a retriable backend failure."""
    message = (
        f"ingest is unavailable ({error}); send the same request again after {retry_after_s} s"
    )
    return error_response(503, ERROR_UNAVAILABLE, message, retry_after_s)


def internal_error() -> Response:
    """Build the 500 response for a bug; the server log has the traceback."""
    message = "internal error while ingesting; the server log has the traceback"
    return error_response(500, ERROR_INTERNAL, message)
