"""The parts of the benchmark suite that ``run_all.py`` runs, each turned into one section.

Every part but ``http`` runs its script as a child process with ``--json``, so that its
memory and CPU figures are its own, and the command shown for the part is the command
that ran (without the ``--json`` file).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

import http_scenarios
from load_report import LoadReport
from mosquitto_broker import find_mosquitto

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PART_NAMES = ("http", "stages", "ceilings", "memory", "teltonika", "mqtt", "distributed")
# distributed needs nats-server and PostgreSQL and adds minutes, so it runs only on request.
DEFAULT_PARTS = PART_NAMES[:-1]
MQTT_RECORDS_PER_MESSAGE = (1, 100)


@dataclass
class SuiteOptions:
    """The settings every part reads: smoke or full size, seconds of load per row, a scratch
    folder for the scripts' JSON files."""

    smoke: bool
    duration_s: float
    folder: Path


class Section(msgspec.Struct):
    """The outcome of one part: status ``ok``, ``skipped`` or ``failed``, its tables and data."""

    part: str
    title: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    markdown: str = ""
    summary: list[str] = []
    commands: list[str] = []
    data: Any = None


@dataclass
class Sizes:
    """The size of each part, for a full run or a smoke run."""

    stage_records: int
    ceiling_records: int
    decode_s: float
    request_duration_s: float
    request_connections: int
    request_pool: int
    memory_vehicles: tuple[int, ...]
    teltonika_connections: int
    mqtt_pool_records: int | None


FULL = Sizes(
    stage_records=200_000,
    ceiling_records=200_000,
    decode_s=1.5,
    request_duration_s=10.0,
    request_connections=64,
    request_pool=200_000,
    memory_vehicles=(1_000, 10_000, 100_000),
    teltonika_connections=1000,
    mqtt_pool_records=None,
)
SMOKE = Sizes(
    stage_records=20_000,
    ceiling_records=20_000,
    decode_s=0.3,
    request_duration_s=1.0,
    request_connections=8,
    request_pool=2_000,
    memory_vehicles=(1_000, 10_000),
    teltonika_connections=20,
    mqtt_pool_records=20_000,
)


def sizes(options: SuiteOptions) -> Sizes:
    """Return the part sizes of this run."""
    return SMOKE if options.smoke else FULL


def estimate_s(part: str, options: SuiteOptions) -> float:
    """Return a rough estimate of a part's seconds on a 2-core machine, from trial runs."""
    load_s = options.duration_s
    size = sizes(options)
    estimates = {
        # Seven rows, each with a server start, a pool build and the probes' grace time.
        "http": 7 * (load_s + (3 if options.smoke else 10)),
        "stages": 3 + size.stage_records / 200_000 * 15,
        "ceilings": 3 + 2 * size.decode_s + size.ceiling_records / 200_000 * 10
        + 2 * (size.request_duration_s + 3),
        "memory": 2 if options.smoke else 12,
        "teltonika": load_s + 4,
        "mqtt": len(MQTT_RECORDS_PER_MESSAGE) * (load_s + 5),
        "distributed": 60 if options.smoke else 4 * (load_s + 20),
    }
    return estimates[part]


def run_script(
    script: str, arguments: list[str], options: SuiteOptions
) -> tuple[str, int, Any]:
    """Run ``benchmarks/<script>`` with ``--json``; return its command, exit status and data.

    The script's output goes to this process's stderr as progress. The data is None when
    the script wrote no JSON.
    """
    command = f"benchmarks/{script} {' '.join(arguments)}".strip()
    json_path = options.folder / f"{Path(script).stem}-{time.monotonic_ns()}.json"
    print(f"\n== {command}", file=sys.stderr, flush=True)
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / script), *arguments,
         "--json", str(json_path)],
        cwd=REPO_ROOT, stdout=sys.stderr, stderr=sys.stderr, check=False,
    )
    data = msgspec.json.decode(json_path.read_bytes()) if json_path.exists() else None
    return command, completed.returncode, data


def failed(part: str, title: str, command: str, returncode: int) -> Section:
    """Return the section of a script that failed, naming the command to rerun."""
    reason = f"`{command}` exited with status {returncode}; rerun it alone to see why"
    log.error("benchmark part failed part=%s command=%s exit=%d", part, command, returncode)
    return Section(part, title, "failed", reason=reason, commands=[command])


# --- http ---------------------------------------------------------------------------------


def run_http(options: SuiteOptions) -> tuple[Section, list[LoadReport]]:
    """Run the seven HTTP scenarios in this process and return their section."""
    reports = http_scenarios.run_scenarios(options.duration_s, options.smoke)

    first, single = reports[0], reports[2]
    sustained = http_scenarios.sustained_rps(first)
    exhausted = [report.label for report in reports if report.pool_exhausted]
    warning = (
        f"\nWARNING: the pre-encoded pool ran out before the end of: {'; '.join(exhausted)}. "
        "Those rates are lower bounds.\n" if exhausted else ""
    )
    markdown = (
        http_scenarios.markdown_table(reports)
        + warning
        + f"\nSustained rate (the lower of accepted and processed, JSON batch 1000): "
        f"{sustained:,.0f} records/s. The last three rows offer fractions of it.\n\n"
        + http_scenarios.commands_table(reports)
    )

    summary = [
        f"HTTP JSON batch 1000: {first.accepted_rps:,.0f} accepted, {first.processed_rps:,.0f} "
        f"processed rec/s (sustained {sustained:,.0f})",
        f"HTTP 1 record per request: {single.accepted_rps:,.0f} requests/s",
    ]
    half = reports[5]
    summary.append(
        f"HTTP at 50 % of sustained: ack p99 {_ms(half.ack_p99_ms)}, "
        f"e2e p99 {_ms(half.e2e_p99_ms)}"
    )
    section = Section(
        "http", "HTTP scenarios", "ok", markdown=markdown, summary=summary,
        commands=[report.command for report in reports],
        data=[msgspec.to_builtins(report) for report in reports],
    )
    return section, reports


def _ms(value_ms: float | None) -> str:
    return "n/a" if value_ms is None else f"{value_ms:,.0f} ms"


# --- stages -------------------------------------------------------------------------------


def run_stages(options: SuiteOptions) -> Section:
    """Run ``stages.py`` and tabulate the cost per record of each stage."""
    title = "Cost per record of each stage"
    records = sizes(options).stage_records
    command, status, data = run_script("stages.py", ["--records", str(records)], options)
    if status != 0 or data is None:
        return failed("stages", title, command, status)
    lines = [
        "| stage | records/s | wall µs/record | CPU µs/record |",
        "|---|--:|--:|--:|",
    ]
    for cost in data:
        wall_s, cpu_s, count = cost["wall_s"], cost["cpu_s"], cost["records"]
        lines.append(
            f"| {cost['name']} | {count / wall_s:,.0f} | {wall_s / count * 1e6:.1f} "
            f"| {cpu_s / count * 1e6:.1f} |"
        )
    by_name = {cost["name"]: cost for cost in data}
    pipeline = ["decode", "validate", "enqueue", "fetch", "process", "store"]
    total_cpu_us = sum(by_name[name]["cpu_s"] / by_name[name]["records"] * 1e6 for name in pipeline)
    markdown = (
        "\n".join(lines)
        + f"\n\nOne process, one stage at a time, {records:,} records. Sum of the CPU per "
        f"record of decode to store: {total_cpu_us:.1f} µs, so one core could carry about "
        f"{1e6 / total_cpu_us:,.0f} records/s through them without HTTP.\n\n"
        f"Command: `{command}`\n"
    )
    summary = [f"stages: {total_cpu_us:.1f} µs CPU per record from decode to store"]
    return Section("stages", title, "ok", markdown=markdown, summary=summary,
                   commands=[command], data=data)


# --- ceilings -----------------------------------------------------------------------------


def run_ceilings(options: SuiteOptions, http_reports: list[LoadReport] | None) -> Section:
    """Run ``ceilings.py``; add the HTTP figures of this run as ratios when there are any."""
    title = "Ceilings and fleetpulse as a ratio of each"
    size = sizes(options)
    arguments = [
        "--records", str(size.ceiling_records),
        "--decode-seconds", f"{size.decode_s:g}",
        "--request-duration", f"{size.request_duration_s:g}",
        "--connections", str(size.request_connections),
        "--pool-requests", str(size.request_pool),
    ]
    command, status, data = run_script("ceilings.py", arguments, options)
    if status != 0 or data is None:
        return failed("ceilings", title, command, status)

    pairs = {pair["name"]: pair for pair in data}
    lines = [
        "| work | ceiling | ceiling rate | fleetpulse | fleetpulse rate | fleetpulse / ceiling |",
        "|---|---|--:|---|--:|--:|",
    ]
    for pair in data:
        lines.append(_ratio_row(pair["name"], pair["ceiling"], pair["ceiling_rate"],
                                pair["fleetpulse"], pair["fleetpulse_rate"], pair["unit"]))

    # The same ceilings against the end-to-end HTTP figures of this run.
    if http_reports:
        first, single = http_reports[0], http_reports[2]
        sustained = http_scenarios.sustained_rps(first)
        decode, store = pairs["decode"], pairs["store"]
        lines.append(_ratio_row("decode", decode["ceiling"], decode["ceiling_rate"],
                                "HTTP batch 1000, accepted", first.accepted_rps, "records/s"))
        lines.append(_ratio_row("store", store["ceiling"], store["ceiling_rate"],
                                "HTTP batch 1000, sustained", sustained, "records/s"))
        requests = pairs["requests"]
        lines.append(_ratio_row(
            "requests", requests["ceiling"], requests["ceiling_rate"],
            f"HTTP 1 record per request ({single.connections} connections)",
            single.accepted_rps, "requests/s",
        ))

    details = "\n".join(f"- {pair['name']}: {pair['detail']}" for pair in data)
    markdown = "\n".join(lines) + f"\n\n{details}\n\nCommand: `{command}`\n"
    summary = [
        "ceilings: fleetpulse is " + ", ".join(
            f"{pair['ratio']:.0%} of bare {pair['name']}" for pair in data
        )
    ]
    return Section("ceilings", title, "ok", markdown=markdown, summary=summary,
                   commands=[command], data=data)


def _ratio_row(
    work: str, ceiling: str, ceiling_rate: float, fleetpulse: str, rate: float, unit: str
) -> str:
    ratio = rate / ceiling_rate if ceiling_rate else 0.0
    return (
        f"| {work} | {ceiling} | {ceiling_rate:,.0f} {unit} | {fleetpulse} "
        f"| {rate:,.0f} {unit} | {ratio:.0%} |"
    )


# --- memory -------------------------------------------------------------------------------


def run_memory(options: SuiteOptions) -> Section:
    """Run ``vehicle_memory.py`` over the fleet sizes of this run."""
    title = "Memory per tracked vehicle"
    vehicles = [str(count) for count in sizes(options).memory_vehicles]
    command, status, data = run_script("vehicle_memory.py", ["--vehicles", *vehicles], options)
    if status != 0 or data is None:
        return failed("memory", title, command, status)
    lines = ["| vehicles | state MiB | KiB per vehicle |", "|--:|--:|--:|"]
    lines.extend(
        f"| {row['vehicles']:,} | {row['state_mib']:.1f} | {row['kib_per_vehicle']:.2f} |"
        for row in data
    )
    markdown = (
        "\n".join(lines)
        + "\n\nGrowth of one process's RSS while `process_records` tracks the fleet: the "
        "processor's per-vehicle state only, without a server or store.\n\n"
        f"Command: `{command}`\n"
    )
    largest = data[-1]
    summary = [
        f"memory: {largest['vehicles']:,} vehicles take {largest['state_mib']:.0f} MiB of "
        f"processor state ({largest['kib_per_vehicle']:.2f} KiB each)"
    ]
    return Section("memory", title, "ok", markdown=markdown, summary=summary,
                   commands=[command], data=data)


# --- teltonika ----------------------------------------------------------------------------


def run_teltonika(options: SuiteOptions) -> Section:
    """Run ``teltonika_fleet.py`` with this run's connections and duration."""
    title = "Teltonika connections"
    arguments = [
        "--connections", str(sizes(options).teltonika_connections),
        "--duration", f"{options.duration_s:g}",
    ]
    command, status, data = run_script("teltonika_fleet.py", arguments, options)
    if status != 0 or data is None:
        return failed("teltonika", title, command, status)
    markdown = (
        "| connections | records per packet | acknowledged rec/s | stored rec/s | server CPU "
        "| server peak RSS | failed connections |\n|--:|--:|--:|--:|--:|--:|--:|\n"
        f"| {data['connections']:,} | {data['records_per_packet']} "
        f"| {data['acknowledged_rps']:,.0f} | {data['stored_rps']:,.0f} "
        f"| {data['server_cpu_pct']:.0f} % | {data['server_peak_rss_mib']:,.0f} MiB "
        f"| {data['failed_connections']} |\n\n"
        "Codec 8 Extended packets, each connection waiting for every answer. Stored rec/s "
        "counts until everything acknowledged was stored.\n\n"
        f"Command: `{command}`\n"
    )
    summary = [
        f"Teltonika: {data['connections']:,} connections, {data['acknowledged_rps']:,.0f} "
        f"acknowledged, {data['stored_rps']:,.0f} stored rec/s"
    ]
    return Section("teltonika", title, "ok", markdown=markdown, summary=summary,
                   commands=[command], data=data)


# --- mqtt ---------------------------------------------------------------------------------


def run_mqtt(options: SuiteOptions) -> Section:
    """Run ``mqtt_load.py`` once per message size, or skip when mosquitto is missing."""
    title = "MQTT through Mosquitto"
    if find_mosquitto() is None:
        return Section("mqtt", title, "skipped",
                       reason="mosquitto is not installed (apt-get install mosquitto)")
    rows, commands = [], []
    pool = sizes(options).mqtt_pool_records
    for per_message in MQTT_RECORDS_PER_MESSAGE:
        arguments = ["--duration", f"{options.duration_s:g}",
                     "--records-per-message", str(per_message)]
        if pool is not None:
            arguments += ["--pool-records", str(pool)]
        command, status, data = run_script("mqtt_load.py", arguments, options)
        if status != 0 or data is None:
            return failed("mqtt", title, command, status)
        rows.append(data)
        commands.append(command)
    lines = [
        "| records per message | PUBACKed by broker rec/s | accepted by fleetpulse rec/s "
        "| processed rec/s | PUBACK p50 / p99 ms | not accepted | server CPU | server peak RSS "
        "| mosquitto CPU | publishers' CPU |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['records_per_message']} | {row['pubacked_rps']:,.0f} "
            f"| {row['accepted_rps']:,.0f} | {row['processed_rps']:,.0f} "
            f"| {_number(row['puback_p50_ms'])} / {_number(row['puback_p99_ms'])} "
            f"| {row['records_not_accepted']:,} | {row['server_cpu_pct']:.0f} % "
            f"| {row['server_peak_rss_mib']:,.0f} MiB | {row['broker_cpu_pct']:.0f} % "
            f"| {row['load_cpu_pct']:.0f} % |"
        )
    command_lines = "\n".join(f"- `{command}`" for command in commands)
    exhausted = [str(row["records_per_message"]) for row in rows if row["pool_exhausted"]]
    if exhausted:
        lines.append(f"\nWARNING: the pre-encoded pool ran out before the end of the row(s) "
                     f"with {', '.join(exhausted)} record(s) per message, so those rates are "
                     "lower bounds; raise --pool-records.")
    markdown = (
        "\n".join(lines)
        + "\n\nQoS 1 publishers keep at most "
        f"{rows[0]['window_records']:,} records published and not yet accepted by "
        "fleetpulse. \"Accepted\" records are durable in fleetpulse's queue and PUBACKed to "
        "the broker.\n\nCommands:\n\n" + command_lines + "\n"
    )
    summary = [
        "MQTT: " + ", ".join(
            f"{row['records_per_message']} per message {row['accepted_rps']:,.0f} accepted "
            f"/ {row['processed_rps']:,.0f} processed rec/s"
            for row in rows
        )
    ]
    return Section("mqtt", title, "ok", markdown=markdown, summary=summary,
                   commands=commands, data=rows)


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


# --- distributed --------------------------------------------------------------------------


def run_distributed(options: SuiteOptions) -> Section:
    """Run ``distributed.py``, or skip when nats-server or PostgreSQL is missing."""
    title = "Distributed: NATS JetStream and PostgreSQL"
    # The test suite's own finders, which distributed.py's starters use too.
    sys.path.insert(0, str(REPO_ROOT))
    from tests.nats_server import find_nats_server
    from tests.postgres_server import find_postgres_bin

    missing = []
    if find_nats_server() is None:
        missing.append("nats-server")
    if find_postgres_bin() is None:
        missing.append("PostgreSQL server binaries")
    if missing:
        return Section("distributed", title, "skipped",
                       reason=f"{' and '.join(missing)} not found")
    arguments = ["--smoke"] if options.smoke else [
        "--processors", "1,2,4", "--duration", f"{options.duration_s:g}",
    ]
    command, status, data = run_script("distributed.py", arguments, options)
    if status != 0 or data is None:
        return failed("distributed", title, command, status)
    lines = [
        "| mode | accepted rec/s | stored rec/s | queue at end | fleetpulse CPU | other CPU "
        "| 503s |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for row in data:
        lines.append(
            f"| {row['label']} | {row['accepted_rps']:,.0f} | {row['processed_rps']:,.0f} "
            f"| {row['queue_depth_end']:,} | {row['server_cpu_pct']:.0f} % "
            f"| {row['other_cpu_pct']:.0f} % | {row['status_503']:,} |"
        )
    markdown = "\n".join(lines) + f"\n\nCommand: `{command}`\n"
    best = max(data, key=lambda row: row["processed_rps"])
    summary = [f"distributed: best stored rate {best['processed_rps']:,.0f} rec/s "
               f"({best['label']})"]
    return Section("distributed", title, "ok", markdown=markdown, summary=summary,
                   commands=[command], data=data)


PartRunner = Callable[[SuiteOptions], Section]
SCRIPT_PARTS: dict[str, PartRunner] = {
    "stages": run_stages,
    "memory": run_memory,
    "teltonika": run_teltonika,
    "mqtt": run_mqtt,
    "distributed": run_distributed,
}


def environment_lines() -> list[str]:
    """Return Markdown list lines naming the machine, Python, libraries and code version."""
    import platform
    import sqlite3
    from importlib import metadata

    versions = []
    for package in ("msgspec", "uvicorn", "starlette", "uvloop", "httptools", "paho-mqtt"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores; 1-minute load average at "
        f"start {os.getloadavg()[0]:.2f}",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
        f"- {', '.join(versions)}",
        f"- Code: {_git_version()}",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return "unknown CPU"


def _git_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
            text=True, check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (f" with {len(changed)} changed files" if changed else "")
