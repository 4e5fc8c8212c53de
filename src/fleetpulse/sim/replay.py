"""``replay()``: send recorded traces as a device would, in real time or faster.

By default each trace is shifted in time so that it ends when the replay ends. With
``keep_times`` the recorded times are sent unchanged. Several files replay side by
side, one device each, all starting now.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from fleetpulse.config import IngestSettings
from fleetpulse.model.record import DEVICE_ID_MAX_LENGTH
from fleetpulse.sim.clock import timeline_start_ms
from fleetpulse.sim.options import DEFAULT_URL
from fleetpulse.sim.pacing import Pacer, ProgressCallback, reporting
from fleetpulse.sim.sender import Sender
from fleetpulse.sim.traces import TracePoint, read_trace
from fleetpulse.sim.wire import DeviceRecord

log = logging.getLogger(__name__)

_NOT_IN_ID = re.compile(r"[^A-Za-z0-9._-]+")


class ReplayOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One replay run. ``speed`` is the time factor, math.inf for as fast as possible.

    ``device_id`` defaults to a name derived from the file name and needs exactly one file.
    """

    files: list[str]
    url: str = DEFAULT_URL
    speed: float = 1.0
    keep_times: bool = False
    device_id: str | None = None
    batch_size: int = 500
    concurrency: int = 4
    request_timeout_s: float = 10.0
    give_up_after_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.files:
            raise ValueError("replay needs at least one trace file")
        if self.device_id is not None and len(self.files) != 1:
            raise ValueError(
                f"a device id can name one trace, but {len(self.files)} files were given. "
                "Leave it out to derive one id per file name"
            )
        if not self.speed > 0:
            raise ValueError(f"speed must be positive (math.inf for max), got {self.speed}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


class ReplaySummary(msgspec.Struct):
    """Totals of a replay. Times are the device times sent, in epoch ms."""

    url: str
    files: list[str]
    device_ids: list[str]
    points: int
    records_sent: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    retries: int
    request_errors: int
    speed: float | str
    keep_times: bool
    first_ts_ms: int
    last_ts_ms: int
    elapsed_s: float
    rate_rps: float


def device_id_for(path: str | Path) -> str:
    """Return a device id made from a file name: its stem with unusual characters as '-'."""
    stem = _NOT_IN_ID.sub("-", Path(path).stem).strip("-")
    return (stem or "trace")[:DEVICE_ID_MAX_LENGTH]


def to_record(point: TracePoint, device_id: str, ts_ms: int) -> DeviceRecord:
    """Return the wire record of a trace point stamped ``ts_ms``, without absent values."""
    return DeviceRecord(
        device_id=device_id,
        ts=ts_ms,
        lat=point.lat,
        lon=point.lon,
        speed_kmh=point.speed_kmh,
        heading_deg=point.heading_deg,
        altitude_m=point.altitude_m,
        engine_rpm=point.engine_rpm,
    )


def schedule(
    traces: list[tuple[str, list[TracePoint]]], now_ms: int, speed: float, keep_times: bool
) -> Iterator[tuple[float, list[Any]]]:
    """Yield (device-time seconds since the trace's first point, [record]) for all traces,
    merged in that order. Shifted traces end at the wall time the replay ends."""
    streams = [
        _timed_records(device_id, points, now_ms, speed, keep_times) for device_id, points in traces
    ]
    for offset_s, record in heapq.merge(*streams, key=lambda item: item[0]):
        yield offset_s, [record]


def _timed_records(
    device_id: str, points: list[TracePoint], now_ms: int, speed: float, keep_times: bool
) -> Iterator[tuple[float, DeviceRecord]]:
    first_ms = points[0].ts_ms
    span_s = (points[-1].ts_ms - first_ms) / 1000.0
    start_ms = first_ms if keep_times else timeline_start_ms(now_ms, span_s, speed)
    for point in points:
        offset_ms = point.ts_ms - first_ms
        yield offset_ms / 1000.0, to_record(point, device_id, start_ms + offset_ms)


async def replay(
    options: ReplayOptions, on_progress: ProgressCallback | None = None
) -> ReplaySummary:
    """Replay the trace files to ``options.url``.

    Raises TraceError for an unreadable file before connecting, ServerUnreachableError
    if the server does not accept connections, and DeliveryError if a batch cannot be
    delivered in time.
    """
    traces = _load(options)
    sender = Sender(
        options.url,
        batch_size=options.batch_size,
        concurrency=options.concurrency,
        request_timeout_s=options.request_timeout_s,
        give_up_after_s=options.give_up_after_s,
    )
    try:
        await sender.probe()
        await sender.start()
        now_ms = time.time_ns() // 1_000_000
        clock_start_s = time.monotonic()
        total_s = max((points[-1].ts_ms - points[0].ts_ms) / 1000.0 for _, points in traces)
        sent_ts: list[int] = []

        def ticks() -> Iterator[tuple[float, list[Any]]]:
            for offset_s, records in schedule(traces, now_ms, options.speed, options.keep_times):
                sent_ts.append(records[0].ts)
                yield offset_s, records

        log.info("replaying %d traces to %s at speed %s", len(traces), options.url, options.speed)
        pacer = Pacer(sender, options.speed, total_s)
        async with reporting(pacer, on_progress):
            await pacer.run(ticks(), clock_start_s)
        elapsed_s = time.monotonic() - clock_start_s
    finally:
        await sender.close()

    stats = sender.stats
    return ReplaySummary(
        url=options.url,
        files=list(options.files),
        device_ids=[device_id for device_id, _ in traces],
        points=sum(len(points) for _, points in traces),
        records_sent=stats.records_sent,
        accepted=stats.accepted,
        rejected=stats.rejected,
        rejected_by_reason=dict(stats.rejected_by_reason),
        retries=stats.retries,
        request_errors=stats.request_errors,
        speed="max" if math.isinf(options.speed) else options.speed,
        keep_times=options.keep_times,
        first_ts_ms=min(sent_ts),
        last_ts_ms=max(sent_ts),
        elapsed_s=round(elapsed_s, 3),
        rate_rps=round(stats.records_sent / elapsed_s, 1) if elapsed_s > 0 else 0.0,
    )


def _load(options: ReplayOptions) -> list[tuple[str, list[TracePoint]]]:
    traces: list[tuple[str, list[TracePoint]]] = []
    used: set[str] = set()
    for file in options.files:
        points = read_trace(file)
        device_id = options.device_id or _unique(device_id_for(file), used)
        used.add(device_id)
        traces.append((device_id, points))
        if options.keep_times:
            _warn_if_too_old(file, points)
    return traces


def _unique(device_id: str, used: set[str]) -> str:
    candidate = device_id
    number = 2
    while candidate in used:
        suffix = f"-{number}"
        candidate = device_id[: DEVICE_ID_MAX_LENGTH - len(suffix)] + suffix
        number += 1
    return candidate


def _warn_if_too_old(file: str, points: list[TracePoint]) -> None:
    max_age_days = IngestSettings().max_age_days
    age_days = (time.time() * 1000 - points[0].ts_ms) / 86_400_000
    if age_days > max_age_days:
        log.warning(
            "%s starts %.0f days ago, so with --keep-times a server with the default "
            "ingest.max_age_days = %s rejects its records as too old",
            file,
            age_days,
            max_age_days,
        )
