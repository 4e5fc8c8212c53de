"""The ingest service: validate a request, publish its valid records, keep the rejects.

Transport layers (the HTTP route now, protocol servers later) call this service and
translate its results and errors into their own responses. The service returns only
after ``Queue.publish`` returned, so an accepted record is durable in the queue.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from fleetpulse import metrics
from fleetpulse.errors import FleetpulseError, QueueFullError, StoreError
from fleetpulse.ingest.decode import BodyError, body_format, decode_body
from fleetpulse.model.record import DeadLetter, Record
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import Reject
from fleetpulse.model.vocabulary import (
    INVALID_JSON,
    INVALID_TYPE,
    SOURCE_HTTP,
    TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
)

if TYPE_CHECKING:
    from fleetpulse.config import Settings
    from fleetpulse.queue.base import Queue
    from fleetpulse.store.base import Store

log = logging.getLogger(__name__)

# HTTP status of each reason a whole request can be rejected for.
REQUEST_ERROR_STATUS: Final = {
    INVALID_JSON: 400,
    INVALID_TYPE: 400,
    TOO_LARGE: 413,
    UNSUPPORTED_MEDIA_TYPE: 415,
}
# Under overload every request fails the same way, so the warning is logged at most
# once per interval, with the number of requests since the last one.
_QUEUE_FULL_LOG_INTERVAL_S: Final = 10.0


class IngestRequestError(FleetpulseError):
    """A request rejected as a whole. ``status`` is the HTTP status to respond with.

    ``reason`` is a reject reason code and ``message`` describes what to change. Sending the
    same request again fails the same way, so the error is not retriable.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


class RecordError(msgspec.Struct, gc=False):
    """The reject reason and detail of one record at ``index`` in the request."""

    index: int
    reason: str
    detail: str


class IngestResult(msgspec.Struct, gc=False):
    """The outcome of one request: counts, and one error per rejected record."""

    accepted: int
    rejected: int
    errors: list[RecordError]


class IngestService:
    """Validates records, publishes the valid ones and writes the rejects as dead letters."""

    def __init__(self, settings: Settings, queue: Queue, store: Store) -> None:
        self.settings = settings
        self._queue = queue
        self._store = store
        self._queue_full_since_log = 0
        self._queue_full_logged_at = -_QUEUE_FULL_LOG_INTERVAL_S

    async def ingest_body(
        self, body: bytes, content_type: str | None, source: str = SOURCE_HTTP
    ) -> IngestResult:
        """Decode, validate and publish the records of one request body.

        Returns after the accepted records are durable in the queue. Raises
        IngestRequestError when the body is unusable as a whole, after writing one dead
        letter for it, and lets QueueFullError from the queue propagate.
        """
        received_at_ms = now_ms()
        started = time.perf_counter()
        try:
            batch = decode_body(body, content_type, received_at_ms, self.settings, source)
        except BodyError as exc:
            error = await self.reject_request(
                exc.reason, exc.message, body, source, received_at_ms=received_at_ms
            )
            raise error from exc
        # The "validate" stage covers decoding too: the fast path does both in one call.
        metrics.STAGE_SECONDS.labels("validate").observe(time.perf_counter() - started)

        return await self.ingest_records(
            batch.records, batch.rejects, source, received_at_ms=received_at_ms
        )

    async def ingest_records(
        self,
        records: list[Record],
        rejects: Sequence[Reject] = (),
        source: str = SOURCE_HTTP,
        *,
        received_at_ms: int | None = None,
    ) -> IngestResult:
        """Publish validated records and write the rejects of the same batch as dead letters.

        For protocol decoders that validate with ``validate_record``. Dead letters are
        written only after the publish succeeded, so a request retried after a full queue
        does not store its rejects twice. Raises QueueFullError when the queue is full.
        ``received_at_ms`` defaults to the first record's, or to now.
        """
        if received_at_ms is None:
            received_at_ms = records[0].received_at_ms if records else now_ms()
        # On QueueFullError the records count as received but neither accepted nor
        # rejected, and the client's retry counts them again.
        metrics.RECORDS_RECEIVED.labels(source).inc(len(records) + len(rejects))

        if records:
            await self._publish(records, source)

        if rejects:
            for reason, count in Counter(reject.reason for reject in rejects).items():
                metrics.RECORDS_REJECTED.labels(source, reason).inc(count)
            letters = [_dead_letter(reject, received_at_ms, source) for reject in rejects]
            await self._write_dead_letters(letters, source)

        log.debug(
            "ingested batch source=%s accepted=%d rejected=%d", source, len(records), len(rejects)
        )
        errors = [RecordError(reject.index, reject.reason, reject.detail) for reject in rejects]
        return IngestResult(len(records), len(rejects), errors)

    async def check_content_type(self, content_type: str | None, source: str = SOURCE_HTTP) -> None:
        """Raise IngestRequestError (415) unless the content type is one ingest accepts.

        Lets a transport reject a request before it reads the body.
        """
        try:
            body_format(content_type)
        except BodyError as exc:
            raise await self.reject_request(exc.reason, exc.message, b"", source) from exc

    async def reject_request(
        self,
        reason: str,
        message: str,
        raw: bytes = b"",
        source: str = SOURCE_HTTP,
        *,
        received_at_ms: int | None = None,
        device_id: str | None = None,
    ) -> IngestRequestError:
        """Record a request rejected as a whole and return the error for the caller to raise.

        Writes one dead letter holding the start of the body, cut to
        ``ingest.dead_letter_raw_bytes``, and counts the request as one received and
        one rejected record. The status comes from ``REQUEST_ERROR_STATUS``, else 400.
        ``device_id`` is set when the transport identifies the sender, as a TCP session does.
        """
        status = REQUEST_ERROR_STATUS.get(reason, 400)
        log.debug(
            "rejected request source=%s reason=%s status=%d body_bytes=%d: %s",
            source,
            reason,
            status,
            len(raw),
            message,
        )
        metrics.RECORDS_RECEIVED.labels(source).inc()
        metrics.RECORDS_REJECTED.labels(source, reason).inc()

        limit = self.settings.ingest.dead_letter_raw_bytes
        letter = DeadLetter(
            received_at_ms=now_ms() if received_at_ms is None else received_at_ms,
            reason=reason,
            detail=message,
            source=source,
            raw=raw[:limit].decode("utf-8", errors="replace"),
            device_id=device_id,
        )
        await self._write_dead_letters([letter], source)
        return IngestRequestError(status, reason, message)

    async def _publish(self, records: list[Record], source: str) -> None:
        started = time.perf_counter()
        try:
            await self._queue.publish(records)
        except QueueFullError as exc:
            metrics.QUEUE_FULL.labels(source).inc()
            self._warn_queue_full(exc, source)
            raise
        metrics.STAGE_SECONDS.labels("enqueue").observe(time.perf_counter() - started)
        metrics.RECORDS_ACCEPTED.labels(source).inc(len(records))

    async def _write_dead_letters(self, letters: list[DeadLetter], source: str) -> None:
        try:
            await self._store.write_dead_letters(letters)
        except StoreError:
            # Dead letters are diagnostic copies, so a store failure does not change the
            # response: accepted records are already durable, and a rejected request gets
            # its error either way. Failing here would only make the client send again.
            log.exception(
                "failed to write %d dead letters source=%s reasons=%s",
                len(letters),
                source,
                sorted({letter.reason for letter in letters}),
            )

    def _warn_queue_full(self, error: QueueFullError, source: str) -> None:
        self._queue_full_since_log += 1
        now = time.monotonic()
        if now - self._queue_full_logged_at < _QUEUE_FULL_LOG_INTERVAL_S:
            return
        log.warning(
            "queue full, responding with 503 source=%s depth=%d capacity=%d "
            "requests_since_warning=%d",
            source,
            error.depth,
            error.capacity,
            self._queue_full_since_log,
        )
        self._queue_full_since_log = 0
        self._queue_full_logged_at = now


def _dead_letter(reject: Reject, received_at_ms: int, source: str) -> DeadLetter:
    return DeadLetter(
        received_at_ms=received_at_ms,
        reason=reject.reason,
        detail=reject.detail,
        source=source,
        raw=reject.raw.decode("utf-8", errors="replace"),
        device_id=reject.device_id,
        index=reject.index,
    )
