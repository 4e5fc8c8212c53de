"""The HTTP scenarios of the benchmark suite: ``http_load.py`` runs and their table.

The first four scenarios send as fast as the server acknowledges: JSON batches of 1000,
of 100, one record per request, and NDJSON batches of 1000. The last three send JSON
batches of 1000 at 25 %, 50 % and 90 % of the sustained rate of the first scenario,
which is the lower of its accepted and processed rates. Each runs against a fresh
server child.
"""

from __future__ import annotations

import dataclasses
import sys

from http_load import LoadOptions, run_benchmark
from load_report import LoadReport, format_summary

# Fractions of the sustained rate for the fixed-rate rows: light, moderate, near capacity.
RATE_FRACTIONS = (0.25, 0.50, 0.90)
# Single-record requests wait on the network round trip, so that scenario needs many
# connections, as a fleet of devices with one connection each would open.
SINGLE_RECORD_CONNECTIONS = 256
SMOKE_DURATION_S = 2.0
SMOKE_VEHICLES = 64
SMOKE_POOL_RECORDS = 20_000


def base_scenarios(duration_s: float, smoke: bool) -> list[LoadOptions]:
    """Return the scenarios run as fast as the server acknowledges."""
    shared = LoadOptions(duration_s=duration_s)
    if smoke:
        shared = dataclasses.replace(
            shared, vehicles=SMOKE_VEHICLES, connections=2, pool_records=SMOKE_POOL_RECORDS,
            e2e_grace_s=2.0,
        )
    single_connections = 8 if smoke else SINGLE_RECORD_CONNECTIONS
    single_pool = SMOKE_POOL_RECORDS // 10 if smoke else None
    return [
        dataclasses.replace(shared, label="JSON, batch 1000", batch=1000),
        dataclasses.replace(shared, label="JSON, batch 100", batch=100),
        dataclasses.replace(
            shared, label="JSON, 1 record per request", batch=1,
            connections=single_connections, pool_records=single_pool,
        ),
        dataclasses.replace(shared, label="NDJSON, batch 1000", batch=1000, ndjson=True),
    ]


def sustained_rps(report: LoadReport) -> float:
    """Return the rate the server kept up with: the lower of accepted and processed."""
    return min(report.accepted_rps, report.processed_rps)


def rate_scenarios(first: LoadOptions, sustained: float) -> list[LoadOptions]:
    """Return the JSON batch-1000 scenario at fixed fractions of ``sustained`` records/s."""
    return [
        dataclasses.replace(
            first,
            label=f"JSON, batch 1000, {fraction:.0%} of sustained",
            rate_rps=round(sustained * fraction),
            # Sized from the rate, not from the maximum-rate default or the smoke size.
            pool_records=None,
        )
        for fraction in RATE_FRACTIONS
    ]


def with_command(options: LoadOptions) -> LoadOptions:
    """Attach the http_load.py command line that reproduces this scenario alone."""
    command = [
        "benchmarks/http_load.py", "--duration", f"{options.duration_s:g}",
        "--rate", "max" if options.rate_rps is None else f"{options.rate_rps:g}",
        "--batch", str(options.batch), "--connections", str(options.connections),
        "--vehicles", str(options.vehicles),
    ]
    if options.ndjson:
        command.append("--ndjson")
    if options.pool_records is not None:
        command += ["--pool-records", str(options.pool_records)]
    return dataclasses.replace(options, command=command)


def markdown_table(reports: list[LoadReport]) -> str:
    """Render one row per scenario: rates, queue, latencies, CPU and memory."""
    lines = [
        "| scenario | offered rec/s | accepted rec/s | processed rec/s | queue at end "
        "| ack p50 / p99 / p99.9 ms | e2e p50 / p99 ms | server CPU | server peak RSS "
        "| load CPU | other CPU | 503s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for report in reports:
        offered = "max" if report.offered_rps is None else f"{report.offered_rps:,.0f}"
        lines.append(
            f"| {report.label} | {offered} | {report.accepted_rps:,.0f} "
            f"| {report.processed_rps:,.0f} | {report.queue_depth_end:,} "
            f"| {_ms(report.ack_p50_ms)} / {_ms(report.ack_p99_ms)} / {_ms(report.ack_p999_ms)} "
            f"| {_ms(report.e2e_p50_ms)} / {_ms(report.e2e_p99_ms)} "
            f"| {report.server_cpu_pct:.0f} % | {report.server_peak_rss_mib:,.0f} MiB "
            f"| {report.load_cpu_pct:.0f} % | {report.other_cpu_pct:.0f} % "
            f"| {report.status_503:,} |"
        )
    return "\n".join(lines) + "\n"


def _ms(value_ms: float | None) -> str:
    if value_ms is None:
        return "n/a"
    return f"{value_ms:,.0f}" if value_ms >= 10 else f"{value_ms:.1f}"


def run_scenarios(duration_s: float, smoke: bool) -> list[LoadReport]:
    """Run the base scenarios, then the fixed-rate ones derived from the first."""
    reports: list[LoadReport] = []
    scenarios = base_scenarios(duration_s, smoke)
    for options in scenarios:
        reports.append(_run_one(options))

    sustained = sustained_rps(reports[0])
    if sustained <= 0:
        raise RuntimeError(
            "the batch-1000 scenario processed no records, so no fixed rate can be derived; "
            "see its errors above"
        )
    for options in rate_scenarios(scenarios[0], sustained):
        reports.append(_run_one(options))
    return reports


def _run_one(options: LoadOptions) -> LoadReport:
    options = with_command(options)
    print(f"\n== {options.label}: {' '.join(options.command)}", file=sys.stderr)
    report = run_benchmark(options)
    print(format_summary(report), file=sys.stderr)
    return report


def commands_table(reports: list[LoadReport]) -> str:
    """Render the command that reproduces each scenario alone, one row per scenario."""
    lines = ["| scenario | command |", "|---|---|"]
    lines.extend(f"| {report.label} | `{report.command}` |" for report in reports)
    return "\n".join(lines) + "\n"
