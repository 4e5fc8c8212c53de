"""The load process: sends pre-encoded requests over keep-alive connections and times them.

It speaks HTTP/1.1 over raw asyncio streams on uvloop instead of using an HTTP client
library. httpx builds a request object, headers and a response object for every request,
which adds Python work per request to the load process. Here a request costs a socket
write of prepared bytes and a parse of the status line and Content-Length, so the load
process stays cheap next to the server (the report shows its CPU). Each connection has
one request in flight at a time.
"""

from __future__ import annotations

import asyncio
import signal
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from typing import Any
from urllib.parse import quote

import msgspec

from fleet_payloads import RequestPool, build_pool, http_get

# Wait before resending a request that got a 503 without a Retry-After header.
DEFAULT_RETRY_AFTER_S = 1.0
# How often a waiting worker checks whether the parent has started the clock.
GO_POLL_S = 0.005
# Characters of an unexpected response kept for the report.
ERROR_EXCERPT_CHARS = 300


class Ack(msgspec.Struct):
    """The counts of a 202 response; the server's other fields are ignored."""

    accepted: int
    rejected: int


class VehicleLastTs(msgspec.Struct):
    """The one field of ``GET /v1/vehicles/{id}`` the end-to-end probe needs."""

    last_ts_ms: int


_ACK_DECODER = msgspec.json.Decoder(Ack)
_VEHICLE_DECODER = msgspec.json.Decoder(VehicleLastTs)


@dataclass
class WorkerPlan:
    """The work of one load process. Rates are in records per second, None for maximum."""

    host: str
    port: int
    process_index: int
    device_ids_per_connection: list[list[str]]
    records_per_connection: int
    batch: int
    ndjson: bool
    seed: int
    rate_per_connection_rps: float | None
    duration_s: float
    marker_interval_s: float
    poll_interval_s: float
    e2e_grace_s: float


@dataclass
class WorkerResult:
    """The measurements of one load process. Latencies are in seconds."""

    process_index: int
    requests_sent: int = 0
    records_sent: int = 0
    records_accepted: int = 0
    records_rejected: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    ack_latencies_s: array[float] = field(default_factory=lambda: array("d"))
    e2e_latencies_s: list[float] = field(default_factory=list)
    markers_not_visible: int = 0
    cpu_s: float = 0.0
    build_s: float = 0.0
    pool_exhausted: int = 0
    max_schedule_lag_s: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class Marker:
    """The request picked for the next end-to-end probe, filled in by the sender."""

    requested: bool = False
    sent_at_s: float = 0.0
    device_id: str = ""
    ts_ms: int = 0
    filled: asyncio.Event = field(default_factory=asyncio.Event)


class ResponseError(Exception):
    """A response that is not HTTP/1.1 with a Content-Length."""


def run_worker(
    plan: WorkerPlan,
    ready: EventType,
    go: EventType,
    start_at: Synchronized[float],
    results: Any,
) -> None:
    """Build the requests, connect, wait for ``go``, send until the deadline, put a result.

    ``start_at`` is the ``time.monotonic()`` value at which sending starts; the parent
    sets it before it sets ``go``. The parent stops this process by PID on Ctrl-C.
    """
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import uvloop

    result = WorkerResult(process_index=plan.process_index)
    build_started_s = time.monotonic()
    pools = [
        build_pool(
            device_ids,
            plan.records_per_connection,
            plan.batch,
            plan.ndjson,
            seed=plan.seed + 1000 * plan.process_index + index,
        )
        for index, device_ids in enumerate(plan.device_ids_per_connection)
    ]
    result.build_s = time.monotonic() - build_started_s
    uvloop.run(_drive(plan, pools, result, ready, go, start_at))
    results.put(result)


async def _drive(
    plan: WorkerPlan,
    pools: list[RequestPool],
    result: WorkerResult,
    ready: EventType,
    go: EventType,
    start_at: Synchronized[float],
) -> None:
    streams = [await asyncio.open_connection(plan.host, plan.port) for _ in pools]
    probe_stream = await asyncio.open_connection(plan.host, plan.port)
    ready.set()
    while not go.is_set():
        await asyncio.sleep(GO_POLL_S)

    started_s = start_at.value
    deadline_s = started_s + plan.duration_s
    await asyncio.sleep(max(0.0, started_s - time.monotonic()))
    cpu_started_s = time.process_time()
    marker = Marker()
    probe = asyncio.create_task(_probe_loop(plan, probe_stream, marker, result, deadline_s))
    senders = [
        _send_loop(plan, reader, writer, pool, marker, result, started_s, deadline_s)
        for (reader, writer), pool in zip(streams, pools, strict=True)
    ]
    await asyncio.gather(*senders)
    result.cpu_s = time.process_time() - cpu_started_s
    await probe

    for _, writer in [*streams, probe_stream]:
        writer.close()


async def _send_loop(
    plan: WorkerPlan,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    pool: RequestPool,
    marker: Marker,
    result: WorkerResult,
    started_s: float,
    deadline_s: float,
) -> None:
    """Send the pool in order until the deadline, paced if the plan sets a rate.

    With a rate, latency runs from the scheduled send time, so a server that falls
    behind shows up in the latency instead of silently lowering the offered rate.
    """
    rate_rps = plan.rate_per_connection_rps
    latencies = result.ack_latencies_s
    scheduled_s = started_s
    index = 0
    while index < len(pool.requests):
        now_s = time.monotonic()
        if rate_rps is not None and scheduled_s > now_s:
            await asyncio.sleep(scheduled_s - now_s)
            now_s = time.monotonic()
        if now_s >= deadline_s:
            return
        if rate_rps is not None:
            result.max_schedule_lag_s = max(result.max_schedule_lag_s, now_s - scheduled_s)

        writer.write(pool.requests[index])
        if marker.requested:
            _take_marker(marker, now_s, pool.markers[index])
        try:
            status, headers, body = await _read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError, ResponseError) as exc:
            result.errors.append(f"connection failed after {result.requests_sent} requests: {exc}")
            return
        latencies.append(time.monotonic() - (now_s if rate_rps is None else scheduled_s))
        result.requests_sent += 1
        result.statuses[status] = result.statuses.get(status, 0) + 1

        if status == 503:
            # The queue is full: send the same records again after Retry-After, as a device
            # would, so the figures never count records that were dropped.
            await asyncio.sleep(min(_retry_after_s(headers), max(0.0, deadline_s - now_s)))
            continue
        count = pool.record_counts[index]
        result.records_sent += count
        if rate_rps is not None:
            scheduled_s += count / rate_rps
        index += 1
        if status == 202:
            ack = _ACK_DECODER.decode(body)
            result.records_accepted += ack.accepted
            result.records_rejected += ack.rejected
        elif len(result.errors) < 5:
            result.errors.append(f"HTTP {status}: {body[:ERROR_EXCERPT_CHARS]!r}")
    result.pool_exhausted += 1


def _take_marker(marker: Marker, sent_at_s: float, last_record: tuple[str, int]) -> None:
    marker.requested = False
    marker.sent_at_s = sent_at_s
    marker.device_id, marker.ts_ms = last_record
    marker.filled.set()


async def _probe_loop(
    plan: WorkerPlan,
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    marker: Marker,
    result: WorkerResult,
    deadline_s: float,
) -> None:
    """Measure end-to-end latency: one marked request at a time, polled until visible.

    A marker taken before the deadline may be polled for ``e2e_grace_s`` after it; one
    that is still not visible then counts in ``markers_not_visible``.
    """
    reader, writer = stream
    while time.monotonic() + plan.marker_interval_s < deadline_s:
        await asyncio.sleep(plan.marker_interval_s)
        marker.filled.clear()
        marker.requested = True
        try:
            await asyncio.wait_for(marker.filled.wait(), max(0.0, deadline_s - time.monotonic()))
        except TimeoutError:
            marker.requested = False
            return

        request = http_get(f"/v1/vehicles/{quote(marker.device_id, safe='')}")
        visible_by_s = deadline_s + plan.e2e_grace_s
        while True:
            writer.write(request)
            status, _, body = await _read_response(reader)
            if status == 200 and _VEHICLE_DECODER.decode(body).last_ts_ms >= marker.ts_ms:
                result.e2e_latencies_s.append(time.monotonic() - marker.sent_at_s)
                break
            if time.monotonic() >= visible_by_s:
                result.markers_not_visible += 1
                return
            await asyncio.sleep(plan.poll_interval_s)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """Read one response; return the status, the lower-cased header block and the body."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise ResponseError(f"invalid status line: {head[:40]!r}")
    status = int(head[9:12])
    headers = head.lower()
    start = headers.find(b"\r\ncontent-length:")
    if start < 0:
        raise ResponseError(f"response {status} has no Content-Length")
    start += len(b"\r\ncontent-length:")
    length = int(headers[start : headers.index(b"\r\n", start)])
    body = await reader.readexactly(length)
    return status, headers, body


def _retry_after_s(headers: bytes) -> float:
    start = headers.find(b"\r\nretry-after:")
    if start < 0:
        return DEFAULT_RETRY_AFTER_S
    start += len(b"\r\nretry-after:")
    try:
        return float(headers[start : headers.index(b"\r\n", start)])
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
