"""Load benchmark of the separate roles on NATS JetStream and PostgreSQL.

Starts its own nats-server (JetStream) and PostgreSQL cluster on free 127.0.0.1 ports.
For each processor count it creates a fresh database and stream, runs ``fleetpulse db
upgrade``, starts one ``fleetpulse ingest``, N ``fleetpulse process`` and one
``fleetpulse api`` as child processes, and drives the ingest process with the
pre-encoded batches of ``http_load.py``. It reports records/s accepted by ingest and
stored by all processors together over the load window, beside the same load against
``fleetpulse run`` (embedded SQLite). Linux only, because it reads /proc.

    .venv/bin/python benchmarks/distributed.py --processors 1,2,4 --duration 20
    .venv/bin/python benchmarks/distributed.py --smoke     # seconds, for CI

The end-to-end probes of ``http_load.py`` are off in the distributed rows, because
they poll the query API on the port they send to, and the ingest process serves no
query API. NOTE: all processes, nats-server and PostgreSQL share one machine here, so
the rows show how the roles divide that machine's cores, not how they scale across
machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
import msgspec

from http_load import LoadOptions, _check_options, _plans, _run_load, run_benchmark
from load_report import LoadReport, format_summary
from server_child import tree_cpu_s, tree_peak_rss_mib

REPO_ROOT = Path(__file__).resolve().parent.parent
# The nats-server and PostgreSQL starters of the test suite, which stop by PID.
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.roleproc import RoleProcess, upgrade_database, write_config  # noqa: E402
from tests.nats_server import NatsServer, start_nats_server  # noqa: E402
from tests.postgres_server import PostgresServer, start_postgres_server  # noqa: E402

log = logging.getLogger("distributed")

DEFAULT_PROCESSORS = (1, 2, 4)
DEFAULT_PARTITIONS = 16
SMOKE_PROCESSORS = (1, 2)
SMOKE_DURATION_S = 2.0
SMOKE_VEHICLES = 64
SMOKE_POOL_RECORDS = 20_000
METRIC_PROCESSED = "fleetpulse_records_processed_total"
METRIC_ACCEPTED = "fleetpulse_records_accepted_total"
METRIC_QUEUE_DEPTH = "fleetpulse_queue_depth_records"


class Deployment:
    """One ingest, ``processors`` process and one API child on a fresh database and stream.

    It offers what ``http_load._run_load`` reads from a server child: ``url`` (the
    ingest process), ``metrics``, ``cpu_s`` and ``peak_rss_mib``, summed over the
    fleetpulse processes. nats-server and PostgreSQL are not in these sums; their CPU
    shows in the report's ``other_cpu_pct``.
    """

    def __init__(
        self,
        folder: Path,
        nats: NatsServer,
        postgres: PostgresServer,
        processors: int,
        partitions: int,
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"bench{processors}"
        dsn = postgres.create_database_sync(f"{name}_{int(time.time())}")
        # A stream, subjects and live subject per scenario, so that one scenario's
        # leftovers cannot reach the next one's processors.
        self.config = write_config(
            folder / "fleetpulse.toml",
            nats.url,
            dsn,
            partitions,
            {
                "nats": {"stream": f"{name}-records", "subject_prefix": f"{name}.records"},
                "live": {"subject": f"{name}.live"},
            },
        )
        self.ingest = RoleProcess("ingest", self.config, folder)
        self.processors = [
            RoleProcess("process", self.config, folder, f"process-{index}")
            for index in range(processors)
        ]
        self.api = RoleProcess("api", self.config, folder)

    @property
    def roles(self) -> list[RoleProcess]:
        return [self.ingest, *self.processors, self.api]

    @property
    def url(self) -> str:
        return self.ingest.url

    @property
    def pid(self) -> int:
        return self.ingest.pid

    def __enter__(self) -> Deployment:
        upgrade_database(self.config)
        for role in self.roles:
            role.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for role in self.roles:
            role.stop()

    def metrics(self, client: httpx.Client) -> dict[str, float]:
        """Return accepted records from ingest, processed records summed over the
        processors, and the queue depth that the first processor reports."""
        ingest = _scrape(client, self.ingest.url)
        processed = [_scrape(client, role.url) for role in self.processors]
        return {
            METRIC_ACCEPTED: ingest.get(METRIC_ACCEPTED, 0.0),
            METRIC_PROCESSED: sum(sample.get(METRIC_PROCESSED, 0.0) for sample in processed),
            METRIC_QUEUE_DEPTH: processed[0].get(METRIC_QUEUE_DEPTH, 0.0),
        }

    def cpu_s(self) -> float:
        """Return user plus system CPU seconds of every fleetpulse child and its own
        children, from /proc."""
        return sum(tree_cpu_s(role.pid) for role in self.roles)

    def peak_rss_mib(self) -> float:
        """Return the sum of the peak resident set sizes (VmHWM) in MiB of every fleetpulse
        child and its own children."""
        return sum(tree_peak_rss_mib(role.pid) for role in self.roles)


def _scrape(client: httpx.Client, url: str) -> dict[str, float]:
    response = client.get(url + "/metrics", timeout=10.0)
    response.raise_for_status()
    totals: dict[str, float] = {}
    for line in response.text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_and_labels, _, value = line.rpartition(" ")
        name = name_and_labels.partition("{")[0]
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def run_distributed(
    options: LoadOptions, processor_counts: Sequence[int], partitions: int, folder: Path
) -> list[LoadReport]:
    """Run the load against each deployment size.

    nats-server and PostgreSQL start once, and are stopped by PID on return, on an error
    and on Ctrl-C.
    """
    _check_options(options)
    # No end-to-end probes: they would poll GET /v1/vehicles on the ingest port.
    distributed = dataclasses.replace(options, marker_interval_ms=1e9, e2e_grace_s=0.0)
    reports = []
    postgres = start_postgres_server(folder)
    try:
        with start_nats_server(folder) as nats:
            for count in processor_counts:
                label = f"distributed, {count} processor{'s' if count > 1 else ''}"
                print(f"--- {label}", file=sys.stderr)
                with Deployment(
                    folder / f"processors-{count}", nats, postgres, count, partitions
                ) as deployment:
                    host, port = deployment.url.removeprefix("http://").rsplit(":", 1)
                    plans = _plans(distributed, host, int(port))
                    report = _run_load(
                        dataclasses.replace(distributed, label=label), deployment, plans
                    )
                reports.append(report)
    finally:
        postgres.stop()
    return reports


def format_table(reports: Sequence[LoadReport]) -> str:
    """Return a Markdown table of the runs: rates, queue depth at the end and CPU."""
    lines = [
        "| Mode | Accepted rec/s | Stored rec/s | Queue at end | fleetpulse CPU % | "
        "Other CPU % | 503 responses |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        lines.append(
            f"| {report.label} | {report.accepted_rps:,.0f} | {report.processed_rps:,.0f} | "
            f"{report.queue_depth_end:,} | {report.server_cpu_pct:.0f} | "
            f"{report.other_cpu_pct:.0f} | {report.status_503:,} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser of this script."""
    parser = argparse.ArgumentParser(
        description="Load-test `fleetpulse ingest` + N x `fleetpulse process` + `fleetpulse "
        "api` on NATS JetStream and PostgreSQL, beside `fleetpulse run`, on 127.0.0.1. "
        "Progress goes to stderr, the table to stdout.",
    )
    defaults = LoadOptions()

    parser.add_argument(
        "--processors",
        default=",".join(map(str, DEFAULT_PROCESSORS)),
        metavar="N,N",
        help="processor counts to run, comma-separated (default 1,2,4)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=DEFAULT_PARTITIONS,
        metavar="N",
        help=f"[queue] partitions of each stream (default {DEFAULT_PARTITIONS})",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=defaults.duration_s,
        metavar="S",
        help="seconds of load per row (default 20)",
    )

    parser.add_argument(
        "--batch",
        type=int,
        default=defaults.batch,
        metavar="N",
        help="records per request (default 1000)",
    )
    parser.add_argument(
        "--vehicles",
        type=int,
        default=defaults.vehicles,
        metavar="N",
        help="simulated vehicles (default 1000)",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=defaults.connections,
        metavar="N",
        help="keep-alive connections per load process (default 8)",
    )

    parser.add_argument("--no-embedded", action="store_true", help="skip the `fleetpulse run` row")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"{SMOKE_DURATION_S:g} s per row, {SMOKE_VEHICLES} vehicles, "
        f"processors {','.join(map(str, SMOKE_PROCESSORS))}: checks that the "
        "benchmark runs, measures nothing",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the reports as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    return parser


def _processor_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--processors {text!r} must be whole numbers such as 1,2,4") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--processors {text!r} must list counts of at least 1")
    return counts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line and return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)

    options = LoadOptions(
        duration_s=args.duration,
        batch=args.batch,
        vehicles=args.vehicles,
        connections=args.connections,
        command=["benchmarks/distributed.py", *argv],
    )
    try:
        counts = _processor_counts(args.processors)
    except ValueError as exc:
        print(f"distributed: {exc}", file=sys.stderr)
        return 2
    if args.smoke:
        counts = list(SMOKE_PROCESSORS)
        options = dataclasses.replace(
            options,
            duration_s=SMOKE_DURATION_S,
            vehicles=SMOKE_VEHICLES,
            connections=2,
            pool_records=SMOKE_POOL_RECORDS,
            e2e_grace_s=2.0,
        )

    reports: list[LoadReport] = []
    try:
        if not args.no_embedded:
            print("--- embedded (fleetpulse run, SQLite)", file=sys.stderr)
            reports.append(run_benchmark(dataclasses.replace(options, label="embedded (run)")))
        with tempfile.TemporaryDirectory(prefix="fleetpulse-distributed-") as folder:
            reports.extend(run_distributed(options, counts, args.partitions, Path(folder)))
    except ValueError as exc:
        print(f"distributed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("distributed: interrupted; every child process is stopped", file=sys.stderr)
        return 130

    for report in reports:
        print(format_summary(report), file=sys.stderr)
    table = format_table(reports)
    print(table)
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(reports)))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
