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
from types import TracebackType
from typing import TYPE_CHECKING, Final

import msgspec
from prometheus_client import Histogram

from fleetpulse import metrics
from fleetpulse.errors import (
    FleetpulseError,
    OverloadedError,
    QueueFullError,
    StorageFullError,
    StoreError,
)
from fleetpulse.ingest.decode import BodyError, body_format, decode_body
from fleetpulse.model.record import DeadLetter, Record
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import Reject, ValidatedBatch
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
# Under overload every request fails the same way, so each kind of warning is logged at
# most once per interval, with the number of requests since the last one.
_BACK_PRESSURE_LOG_INTERVAL_S: Final = 10.0


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
        self._inflight_bytes = 0
        self._queue_full_warning = _ThrottledWarning()
        self._overloaded_warning = _ThrottledWarning()
        self._storage_full_warning = _ThrottledWarning()
        self._dead_letter_warning = _ThrottledWarning()

    @property
    def inflight_bytes(self) -> int:
        """Return the body bytes of the requests admitted and not yet responded to."""
        return self._inflight_bytes

    def admit(self, reserved_bytes: int | None = 0, source: str = SOURCE_HTTP) -> Admission:
        """Count a request's body against ``ingest.max_inflight_bytes`` for a with block.

        The transport adds the body bytes as it receives them with ``Admission.receive``,
        so a client that declares a large Content-Length and then sends slowly counts only
        the bytes it has sent. ``reserved_bytes`` are counted up front; None counts
        ``ingest.max_body_bytes``, the most a request may send. Raises OverloadedError when
        the bytes in progress would pass the limit, on entering the with block or in a
        later ``receive``. A
        request is always admitted while no other one has bytes counted, so that any allowed
        size fits.
        """
        max_body_bytes = self.settings.ingest.max_body_bytes
        size = max_body_bytes if reserved_bytes is None else min(reserved_bytes, max_body_bytes)
        return Admission(self, source, size)

    def _take_inflight(self, held_bytes: int, size: int, source: str) -> None:
        """Count ``size`` more bytes for a request with ``held_bytes``, or raise OverloadedError."""
        limit = self.settings.ingest.max_inflight_bytes
        others = self._inflight_bytes - held_bytes
        if others > 0 and self._inflight_bytes + size > limit:
            metrics.OVERLOADED.labels(source).inc()
            if self._overloaded_warning.due():
                log.warning(
                    "ingest overloaded, responding with 503 source=%s inflight_bytes=%d "
                    "request_bytes=%d max_inflight_bytes=%d requests_since_warning=%d",
                    source,
                    self._inflight_bytes,
                    held_bytes + size,
                    limit,
                    self._overloaded_warning.take_count(),
                )
            raise OverloadedError(self._inflight_bytes, held_bytes + size, limit)
        self._inflight_bytes += size

    async def ingest_body(
        self, body: bytes, content_type: str | None, source: str = SOURCE_HTTP
    ) -> IngestResult:
        """Decode, validate and publish the records of one request body.

        Returns after the accepted records are durable in the queue. Raises
        IngestRequestError when the body is unusable as a whole, after writing one dead
        letter for it, and lets QueueFullError from the queue propagate.
        """
        batch, received_at_ms = await self.decode(body, content_type, source)
        return await self.ingest_records(
            batch.records, batch.rejects, source, received_at_ms=received_at_ms
        )

    async def decode(
        self, body: bytes, content_type: str | None, source: str = SOURCE_HTTP
    ) -> tuple[ValidatedBatch, int]:
        """Decode and validate one request body; return its records and receive time.

        The HTTP handler calls it directly when it must check the records' devices
        before they are published, then passes them to ``ingest_records``. The receive time
        (epoch ms) stamps the records and their dead letters. Raises IngestRequestError
        when the body is unusable
        as a whole, after writing one dead letter for it.
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
        _stage_seconds("validate").observe(time.perf_counter() - started)
        return batch, received_at_ms

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
        does not store its rejects twice. Raises QueueFullError when the queue is full,
        QueueStorageFullError when its disk is full and QueueError on other failures.
        Raises StoreError when the dead letters cannot be written, so that the transport
        does not acknowledge records it could not keep.
        ``received_at_ms`` defaults to the first record's, or to now.
        """
        if received_at_ms is None:
            received_at_ms = records[0].received_at_ms if records else now_ms()
        # On QueueFullError the records count as received but neither accepted nor
        # rejected, and the client's retry counts them again.
        _source_metrics(source).received.inc(len(records) + len(rejects))

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
            if self._queue_full_warning.due():
                log.warning(
                    "queue full, responding with 503 source=%s depth=%d capacity=%d "
                    "requests_since_warning=%d",
                    source,
                    exc.depth,
                    exc.capacity,
                    self._queue_full_warning.take_count(),
                )
            raise
        except StorageFullError as exc:
            # Nothing of the request is kept, so the transport must not acknowledge it.
            metrics.STORAGE_FULL.labels(source).inc()
            if self._storage_full_warning.due():
                log.warning(
                    "disk full, rejecting records until space is freed source=%s records=%d "
                    "requests_since_warning=%d: %s",
                    source,
                    len(records),
                    self._storage_full_warning.take_count(),
                    exc,
                )
            raise
        _stage_seconds("enqueue").observe(time.perf_counter() - started)
        _source_metrics(source).accepted.inc(len(records))

    async def _write_dead_letters(self, letters: list[DeadLetter], source: str) -> None:
        """Write dead letters, or raise the store's error so the transport withholds its ack.

        Records accepted in the same request are already in the queue when this raises.
        The client's retry publishes them again, and the store keeps one row per
        (device_id, ts_ms), so the retry adds no duplicate records, positions or events.
        """
        try:
            await self._store.write_dead_letters(letters)
        except StorageFullError as exc:
            # The store writer has already logged the full disk as an error.
            metrics.STORAGE_FULL.labels(source).inc()
            if self._storage_full_warning.due():
                log.warning(
                    "disk full, rejecting the request until space is freed: %d dead letters "
                    "not written source=%s requests_since_warning=%d: %s",
                    len(letters),
                    source,
                    self._storage_full_warning.take_count(),
                    exc,
                )
            raise
        except StoreError as exc:
            if self._dead_letter_warning.due():
                log.error(
                    "failed to write %d dead letters, so the request is not acknowledged source=%s "
                    "reasons=%s requests_since_warning=%d: %s",
                    len(letters),
                    source,
                    sorted({letter.reason for letter in letters}),
                    self._dead_letter_warning.take_count(),
                    exc,
                )
            raise


class Admission:
    """The body bytes of one admitted request, counted against ``ingest.max_inflight_bytes``.

    A context manager, written as a class because ``contextlib.contextmanager`` costs a
    generator per request. Entering counts the reserved bytes, and leaving releases
    every byte counted.
    """

    __slots__ = ("_reserved_bytes", "_service", "_source", "held_bytes")

    def __init__(self, service: IngestService, source: str, reserved_bytes: int = 0) -> None:
        self._service = service
        self._source = source
        self._reserved_bytes = reserved_bytes
        self.held_bytes = 0

    def __enter__(self) -> Admission:
        self._service._take_inflight(0, self._reserved_bytes, self._source)
        self.held_bytes = self._reserved_bytes
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._service._inflight_bytes -= self.held_bytes
        self.held_bytes = 0

    def receive(self, size: int) -> None:
        """Count ``size`` more received bytes; raises OverloadedError past the limit."""
        self._service._take_inflight(self.held_bytes, size, self._source)
        self.held_bytes += size


class _ThrottledWarning:
    """Allows one warning per interval and counts the occurrences in between."""

    def __init__(self, interval_s: float = _BACK_PRESSURE_LOG_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._count = 0
        self._logged_at = -interval_s

    def due(self) -> bool:
        """Count one occurrence and return whether a warning should be logged for it."""
        self._count += 1
        now = time.monotonic()
        if now - self._logged_at < self._interval_s:
            return False
        self._logged_at = now
        return True

    def take_count(self) -> int:
        """Return the occurrences since the last warning, this one included, and reset."""
        count, self._count = self._count, 0
        return count


class _SourceMetrics:
    """The counters of one ingest source, looked up once because ``labels()`` is slow."""

    __slots__ = ("accepted", "received")

    def __init__(self, source: str) -> None:
        self.received = metrics.RECORDS_RECEIVED.labels(source)
        self.accepted = metrics.RECORDS_ACCEPTED.labels(source)


# Keyed by the source names of the vocabulary, so the dicts stay small.
_SOURCE_METRICS: dict[str, _SourceMetrics] = {}
_STAGE_SECONDS: dict[str, Histogram] = {}


def _source_metrics(source: str) -> _SourceMetrics:
    found = _SOURCE_METRICS.get(source)
    if found is None:
        found = _SOURCE_METRICS[source] = _SourceMetrics(source)
    return found


def _stage_seconds(stage: str) -> Histogram:
    found = _STAGE_SECONDS.get(stage)
    if found is None:
        found = _STAGE_SECONDS[stage] = metrics.STAGE_SECONDS.labels(stage)
    return found


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
