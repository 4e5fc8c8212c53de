"""Batched delivery of records to ``POST /v1/telemetry`` with retries.

A few worker tasks share one httpx.AsyncClient (HTTP/1.1 keep-alive, one connection
per worker), each for a fixed share of the devices. A batch is retried on 429, 503
and other 5xx responses, after the Retry-After the server sent if any, and on
transport errors with exponential back-off. Retries go on until the server responds
or ``give_up_after_s`` runs out. Then the run fails with DeliveryError, so records are
never dropped silently. A timed-out request may have been stored by the server before
the retry, so a retry can deliver a record twice. The server deduplicates on (device_id, ts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import zlib
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import msgspec

from fleetpulse.sim.errors import AuthenticationError, DeliveryError, ServerUnreachableError
from fleetpulse.sim.wire import encode_batch

log = logging.getLogger(__name__)

T = TypeVar("T")

INGEST_PATH = "/v1/telemetry"
# The environment variable with the bearer token sent with every batch.
TOKEN_ENV = "FLEETPULSE_TOKEN"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 10.0
# A Retry-After longer than this is capped: the give-up deadline still bounds the wait.
RETRY_AFTER_MAX_S = 60.0
# At most one retry warning per interval. The others go to debug with a running count.
RETRY_LOG_INTERVAL_S = 5.0
# Reason counted for rejects the server summarised without listing them.
UNLISTED_REASON = "unlisted"


class _ErrorItem(msgspec.Struct):
    index: int = -1
    reason: str = UNLISTED_REASON
    detail: str = ""


class _IngestReply(msgspec.Struct):
    accepted: int = 0
    rejected: int = 0
    errors: list[_ErrorItem] = msgspec.field(default_factory=list)


class _ErrorBody(msgspec.Struct):
    code: str = "unknown"
    message: str = ""


class _ErrorReply(msgspec.Struct):
    error: _ErrorBody = msgspec.field(default_factory=_ErrorBody)


# Enough samples for a stable p99.9; beyond it the sample is replaced uniformly.
ACK_SAMPLES_MAX = 100_000
# Sampling needs no reproducibility, but a private generator keeps the global one untouched.
_sample_random = random.Random(0)


@dataclass(slots=True)
class SendStats:
    """Counts from the server's responses so far.

    ``records_sent`` counts the records of every request the server responded to.
    """

    records_sent: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    batches: int = 0
    request_errors: int = 0
    # Seconds from sending a request to its acknowledgement, one per acknowledged request;
    # a uniform sample once ACK_SAMPLES_MAX are kept, so a day-long run stays small.
    ack_latencies_s: list[float] = field(default_factory=list)
    _acks_seen: int = 0

    def record_ack(self, latency_s: float) -> None:
        """Keep one acknowledgement latency, sampling uniformly beyond ACK_SAMPLES_MAX."""
        self._acks_seen += 1
        if len(self.ack_latencies_s) < ACK_SAMPLES_MAX:
            self.ack_latencies_s.append(latency_s)
            return
        slot = _sample_random.randrange(self._acks_seen)
        if slot < ACK_SAMPLES_MAX:
            self.ack_latencies_s[slot] = latency_s

    def ack_percentile_ms(self, fraction: float) -> float | None:
        """Return a percentile of the acknowledgement latency in ms, or None before any ack."""
        if not self.ack_latencies_s:
            return None
        ordered = sorted(self.ack_latencies_s)
        index = min(len(ordered) - 1, int(fraction * len(ordered)))
        return round(ordered[index] * 1000, 2)


class _Lane:
    """One worker's share of the devices: records waiting for a batch, and full batches."""

    def __init__(self) -> None:
        self.pending: list[Any] = []
        # Two batches per lane keep its connection busy without buffering much.
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue(maxsize=2)


class Sender:
    """Delivers records to ``{base_url}/v1/telemetry`` in batches of up to ``batch_size``.

    Each device is assigned to one of ``concurrency`` lanes, and each lane has one
    worker task and one connection, so a device's records reach the server in the order
    they were added, even across retries. Use ``start()``, then ``add()`` records and
    ``flush()`` or ``drain()``, then ``close()``. If a worker fails for good, the pending
    call raises its error. ``transport`` replaces the network, for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        batch_size: int = 500,
        concurrency: int = 4,
        request_timeout_s: float = 10.0,
        give_up_after_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # A server with authentication on needs a token that may send for every simulated
        # device: an admin key, or a device token that lists them all.
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self.url = self.base_url + INGEST_PATH
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.give_up_after_s = give_up_after_s
        self.stats = SendStats()
        self._client = httpx.AsyncClient(
            timeout=request_timeout_s,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )
        self._lanes = [_Lane() for _ in range(concurrency)]
        self._lane_of: dict[str, _Lane] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._jitter = random.Random()
        self._last_retry_log_s = 0.0
        self._retries_since_log = 0

    async def start(self) -> None:
        """Start one worker task per lane."""
        for number, lane in enumerate(self._lanes):
            task = asyncio.create_task(self._work(lane), name=f"sender-{number}")
            self._workers.append(task)
        log.info("sending to %s over %d connections", self.url, self.concurrency)

    async def probe(self) -> None:
        """Check that the server accepts connections, or raise ServerUnreachableError.

        Any HTTP response counts, even 404. Only a transport failure means unreachable.
        """
        try:
            await self._client.get(self.base_url + "/")
        except httpx.TransportError as exc:
            raise ServerUnreachableError(self.base_url, _describe(exc)) from exc

    async def add(self, records: list[Any]) -> None:
        """Add records to their devices' lanes and queue every lane batch that is full.

        Consecutive records of one device, such as the burst a device uploads after an
        outage, go into one request unless they are more than ``batch_size``, as a
        device sends its upload. Waits while a full lane's queue is full. Raises a
        worker's fatal error.
        """
        self._raise_if_failed()
        start = 0
        while start < len(records):
            lane = self._lane_for(records[start])
            end = _end_of_device_run(records, start)
            if lane.pending and len(lane.pending) + end - start > self.batch_size:
                await self._enqueue_batch(lane, whole=True)
            lane.pending.extend(records[start:end])
            if len(lane.pending) >= self.batch_size:
                await self._enqueue_batch(lane)
            start = end

    async def flush(self) -> None:
        """Queue the records of every lane, full batch or not."""
        for lane in self._lanes:
            if lane.pending:
                await self._enqueue_batch(lane)

    async def submit(self, records: list[Any]) -> None:
        """Add records and queue them right away."""
        await self.add(records)
        await self.flush()

    async def drain(self) -> None:
        """Queue everything added and wait until the server responded to all of it.

        Raises a worker's fatal error.
        """
        await self.flush()
        for lane in self._lanes:
            await self._unless_failed(lane.queue.join())
        self._raise_if_failed()

    async def close(self) -> None:
        """Cancel the workers and close the connections. Safe to call twice."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        await self._client.aclose()
        unsent = sum(lane.queue.qsize() + (1 if lane.pending else 0) for lane in self._lanes)
        if unsent:
            log.warning("closed with %d batches not sent to %s", unsent, self.url)

    def _lane_for(self, record: Any) -> _Lane:
        if isinstance(record, dict):
            # A bad record may lack a usable device id; any lane will do for it.
            device_id = record.get("device_id")
            if not isinstance(device_id, str):
                device_id = ""
        else:
            device_id = record.device_id
        lane = self._lane_of.get(device_id)
        if lane is None:
            lane = self._lanes[zlib.crc32(device_id.encode()) % len(self._lanes)]
            self._lane_of[device_id] = lane
        return lane

    async def _enqueue_batch(self, lane: _Lane, whole: bool = False) -> None:
        # ``whole`` sends all pending records, which the caller keeps within batch_size.
        size = len(lane.pending) if whole else self.batch_size
        batch = lane.pending[:size]
        del lane.pending[:size]
        if lane.queue.full():
            await self._unless_failed(lane.queue.put(batch))
        else:
            lane.queue.put_nowait(batch)
            # Let the workers send while the caller is generating as fast as it can.
            await asyncio.sleep(0)
        self._raise_if_failed()
        if len(lane.pending) >= self.batch_size:
            await self._enqueue_batch(lane)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _unless_failed(self, awaitable: Awaitable[T]) -> T:
        operation = asyncio.ensure_future(awaitable)
        failed = asyncio.ensure_future(self._failed.wait())
        try:
            # Wakes when the operation completes or a worker records a fatal error.
            await asyncio.wait({operation, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            if not operation.done():
                operation.cancel()
        if self._failure is not None and not operation.done():
            raise self._failure
        self._raise_if_failed()
        return operation.result()

    async def _work(self, lane: _Lane) -> None:
        while True:
            batch = await lane.queue.get()
            try:
                await self._deliver(batch)
            except (DeliveryError, AuthenticationError) as exc:
                log.error("stopping the sender to %s: %s", self.url, exc)
                self._fail(exc)
                return
            except Exception as exc:
                # A bug here must stop the run, not lose the batch without a trace.
                log.exception("sender worker failed on a batch of %d records", len(batch))
                self._fail(exc)
                return
            finally:
                lane.queue.task_done()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._failed.set()

    async def _deliver(self, batch: list[Any]) -> None:
        body = encode_batch(batch)
        started_s = time.monotonic()
        attempt = 0
        while True:
            attempt_started_s = time.monotonic()
            try:
                response = await self._client.post(self.url, content=body, headers=self._headers)
            except httpx.TransportError as exc:
                last_error = _describe(exc)
                delay_s = self._backoff_s(attempt)
            else:
                if response.is_success:
                    self.stats.record_ack(time.monotonic() - attempt_started_s)
                    self._count_reply(response, len(batch))
                    return
                if response.status_code in (401, 403):
                    raise AuthenticationError(self.url, response.status_code, TOKEN_ENV)
                if response.status_code not in RETRY_STATUSES:
                    self._count_request_error(response, len(batch))
                    return
                last_error = f"HTTP {response.status_code}"
                retry_after_s = _retry_after_s(response)
                if retry_after_s is None:
                    delay_s = self._backoff_s(attempt)
                else:
                    delay_s = retry_after_s

            attempt += 1
            waited_s = time.monotonic() - started_s
            if waited_s + delay_s > self.give_up_after_s:
                raise DeliveryError(self.url, len(batch), waited_s, last_error)
            self.stats.retries += 1
            self._log_retry(len(batch), delay_s, last_error, attempt)
            await asyncio.sleep(delay_s)

    def _backoff_s(self, attempt: int) -> float:
        ceiling_s = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0**attempt)
        # Jitter spreads the workers' retries so they do not hit the server together.
        return ceiling_s * self._jitter.uniform(0.5, 1.0)

    def _count_reply(self, response: httpx.Response, records: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.records_sent += records
        try:
            reply = msgspec.json.decode(response.content, type=_IngestReply)
        except msgspec.DecodeError as exc:
            # A 2xx response means the batch was accepted, even without the usual counts.
            log.warning(
                "unreadable %d response from %s (%s), counting %d records as accepted",
                response.status_code,
                self.url,
                exc,
                records,
            )
            stats.accepted += records
            return
        stats.accepted += reply.accepted
        stats.rejected += reply.rejected
        for error in reply.errors:
            stats.rejected_by_reason[error.reason] += 1
        unlisted = reply.rejected - len(reply.errors)
        if unlisted > 0:
            stats.rejected_by_reason[UNLISTED_REASON] += unlisted

    def _count_request_error(self, response: httpx.Response, records: int) -> None:
        # A 4xx other than 429 rejects the whole request, and sending it again cannot help.
        try:
            error = msgspec.json.decode(response.content, type=_ErrorReply).error
        except msgspec.DecodeError:
            error = _ErrorBody(code=f"http_{response.status_code}", message=response.text[:200])
        stats = self.stats
        stats.batches += 1
        stats.records_sent += records
        stats.request_errors += 1
        stats.rejected += records
        stats.rejected_by_reason[error.code] += records
        log.error(
            "server rejected a batch of %d records with HTTP %d %s: %s",
            records,
            response.status_code,
            error.code,
            error.message,
        )

    def _log_retry(self, records: int, delay_s: float, last_error: str, attempt: int) -> None:
        self._retries_since_log += 1
        now_s = time.monotonic()
        if now_s - self._last_retry_log_s < RETRY_LOG_INTERVAL_S:
            log.debug(
                "retrying a batch of %d records in %.2f s after %s (attempt %d)",
                records,
                delay_s,
                last_error,
                attempt,
            )
            return
        log.warning(
            "retrying a batch of %d records to %s in %.2f s after %s "
            "(%d retries since the last report)",
            records,
            self.url,
            delay_s,
            last_error,
            self._retries_since_log,
        )
        self._last_retry_log_s = now_s
        self._retries_since_log = 0


def _retry_after_s(response: httpx.Response) -> float | None:
    """Return the Retry-After header in seconds (delta or HTTP date), capped, or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            log.debug("ignoring an unreadable Retry-After %r", value)
            return None
        seconds = moment.timestamp() - time.time()
    return min(RETRY_AFTER_MAX_S, max(0.0, seconds))


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _end_of_device_run(records: list[Any], start: int) -> int:
    """Return the index after the run of records from the device of ``records[start]``."""
    device_id = _device_id(records[start])
    end = start + 1
    while end < len(records) and _device_id(records[end]) == device_id:
        end += 1
    return end


def _device_id(record: Any) -> object:
    if isinstance(record, dict):
        return record.get("device_id")
    return record.device_id
