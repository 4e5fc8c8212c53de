"""The figures of one load run: computed from the load processes' results and /metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from load_worker import WorkerResult

if TYPE_CHECKING:
    from http_load import LoadOptions


class LoadReport(msgspec.Struct):
    """Everything one run measured. Rates are records/s over the load window."""

    label: str
    command: str
    batch: int
    ndjson: bool
    connections: int
    load_processes: int
    vehicles: int
    offered_rps: float | None
    duration_s: float
    load_average_1m: float
    requests: int
    records_sent: int
    records_accepted: int
    records_rejected: int
    accepted_rps: float
    processed_rps: float
    queue_depth_start: int
    queue_depth_end: int
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    ack_p999_ms: float | None
    e2e_p50_ms: float | None
    e2e_p99_ms: float | None
    e2e_samples: int
    e2e_not_visible: int
    # The server process and its child processes: CPU summed over all of them, and the
    # sum of each one's peak RSS (an upper bound, since the peaks need not coincide).
    server_cpu_s: float
    server_cpu_pct: float
    server_peak_rss_mib: float
    load_cpu_s: float
    load_cpu_pct: float
    load_build_s: float
    # CPU used on the machine in the window by neither the server nor the load
    # processes: other users, the parent's /metrics scrapes and the kernel's own work.
    other_cpu_pct: float
    status_503: int
    statuses: dict[int, int]
    pool_exhausted: bool
    max_schedule_lag_ms: float
    errors: list[str]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of ``values`` (``fraction`` in 0..1), None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def build_report(
    options: LoadOptions,
    results: list[WorkerResult],
    processed: float,
    queue_depth_start: float,
    queue_depth_end: float,
    server_cpu_s: float,
    server_peak_rss_mib: float,
    machine_busy_s: float,
    load_average: tuple[float, float, float],
) -> LoadReport:
    """Merge the load processes' results with the server-side figures of the window."""
    acks = [value for result in results for value in result.ack_latencies_s]
    e2e = [value for result in results for value in result.e2e_latencies_s]
    statuses: dict[int, int] = {}
    for result in results:
        for status, count in result.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    accepted = sum(result.records_accepted for result in results)
    load_cpu_s = sum(result.cpu_s for result in results)
    duration_s = options.duration_s

    return LoadReport(
        label=options.label,
        command=" ".join(options.command),
        batch=options.batch,
        ndjson=options.ndjson,
        connections=options.connections,
        load_processes=options.load_processes,
        vehicles=options.vehicles,
        offered_rps=options.rate_rps,
        duration_s=duration_s,
        load_average_1m=load_average[0],
        requests=sum(result.requests_sent for result in results),
        records_sent=sum(result.records_sent for result in results),
        records_accepted=accepted,
        records_rejected=sum(result.records_rejected for result in results),
        accepted_rps=accepted / duration_s,
        processed_rps=processed / duration_s,
        queue_depth_start=int(queue_depth_start),
        queue_depth_end=int(queue_depth_end),
        ack_p50_ms=_ms(percentile(acks, 0.50)),
        ack_p99_ms=_ms(percentile(acks, 0.99)),
        ack_p999_ms=_ms(percentile(acks, 0.999)),
        e2e_p50_ms=_ms(percentile(e2e, 0.50)),
        e2e_p99_ms=_ms(percentile(e2e, 0.99)),
        e2e_samples=len(e2e),
        e2e_not_visible=sum(result.markers_not_visible for result in results),
        server_cpu_s=server_cpu_s,
        server_cpu_pct=100.0 * server_cpu_s / duration_s,
        server_peak_rss_mib=server_peak_rss_mib,
        load_cpu_s=load_cpu_s,
        load_cpu_pct=100.0 * load_cpu_s / duration_s,
        other_cpu_pct=100.0 * (machine_busy_s - server_cpu_s - load_cpu_s) / duration_s,
        load_build_s=max((result.build_s for result in results), default=0.0),
        status_503=statuses.get(503, 0),
        statuses=statuses,
        pool_exhausted=any(result.pool_exhausted for result in results),
        max_schedule_lag_ms=1000.0 * max(result.max_schedule_lag_s for result in results),
        errors=[error for result in results for error in result.errors],
    )


def _ms(value_s: float | None) -> float | None:
    return None if value_s is None else value_s * 1000.0


def format_summary(report: LoadReport) -> str:
    """Render the report as an aligned two-column table for a terminal."""
    offered = "max" if report.offered_rps is None else f"{report.offered_rps:,.0f} rec/s"
    body = "NDJSON" if report.ndjson else "JSON"
    rows = [
        ("scenario", f"{body}, batch {report.batch}, {report.connections} connections x "
                     f"{report.load_processes} load process(es), {report.vehicles} vehicles"),
        ("offered rate", offered),
        ("duration", f"{report.duration_s:g} s (1-minute load average at start "
                     f"{report.load_average_1m:.2f})"),
        ("requests", f"{report.requests:,} ({report.status_503:,} answered 503)"),
        ("accepted (202)", f"{report.accepted_rps:,.0f} rec/s ({report.records_accepted:,} "
                           f"records, {report.records_rejected:,} rejected)"),
        ("processed and stored", f"{report.processed_rps:,.0f} rec/s"),
        ("queue depth", f"{report.queue_depth_start:,} records at start, "
                        f"{report.queue_depth_end:,} at end"),
        ("ack latency", f"p50 {_fmt(report.ack_p50_ms)}  p99 {_fmt(report.ack_p99_ms)}  "
                        f"p99.9 {_fmt(report.ack_p999_ms)}"),
        ("end-to-end latency", f"p50 {_fmt(report.e2e_p50_ms)}  p99 {_fmt(report.e2e_p99_ms)}  "
                               f"({report.e2e_samples} probes, {report.e2e_not_visible} not "
                               "visible in time)"),
        ("server CPU", f"{report.server_cpu_s:.1f} s = {report.server_cpu_pct:.0f} % of one core "
                       "(server and its child processes)"),
        ("server peak RSS", f"{report.server_peak_rss_mib:,.0f} MiB (sum over the server and "
                            "its child processes)"),
        ("load generator CPU", f"{report.load_cpu_s:.1f} s = {report.load_cpu_pct:.0f} % of one "
                               f"core (build before the clock: {report.load_build_s:.1f} s)"),
        ("other CPU", f"{report.other_cpu_pct:.0f} % of one core used by other processes "
                      "during the window"),
    ]
    if report.offered_rps is not None:
        rows.append(("max schedule lag", f"{report.max_schedule_lag_ms:,.0f} ms"))
    if report.pool_exhausted:
        warning = "the pre-encoded pool ran out before the end; raise --pool-records"
        rows.append(("WARNING", warning))
    for error in report.errors[:5]:
        rows.append(("error", error))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _fmt(value_ms: float | None) -> str:
    return "n/a" if value_ms is None else f"{value_ms:,.1f} ms"
