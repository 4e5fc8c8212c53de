"""Load benchmark of the embedded server: HTTP ingest -> queue -> processing -> store -> API.

Starts ``fleetpulse run`` as a child process on a free 127.0.0.1 port with a fresh data
folder and drives it from separate load processes with pre-encoded requests. It reports
accepted and processed records/s, acknowledgement and end-to-end latency, and the CPU and
memory of the server and of the load processes. Linux only, because it reads /proc.

    .venv/bin/python benchmarks/http_load.py --batch 1000 --rate max --duration 20
    .venv/bin/python benchmarks/http_load.py --batch 1000 --rate 20000 --json out.json
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import multiprocessing.queues
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Protocol

import httpx
import msgspec

from load_report import LoadReport, build_report, format_summary
from load_worker import WorkerPlan, WorkerResult, run_worker
from server_child import ServerChild, machine_busy_s

log = logging.getLogger("http_load")

MAX_DURATION_S = 300.0
# Records and requests per second the pool is sized for under --rate max: above what
# the server accepted on a 2-core machine (about 100,000 records/s in batches of 1000,
# 10,000 requests/s of one record). A faster server empties the pool early, the report
# then warns, and --pool-records raises the size.
MAX_RATE_POOL_RPS = 120_000
MAX_RATE_POOL_REQUESTS_PER_S = 15_000
# Extra records per fixed-rate pool, so that a generator running slightly ahead of
# its schedule never runs out.
FIXED_RATE_POOL_MARGIN = 1.1
READY_TIMEOUT_S = 300.0
# Seconds between the parent starting the clock and the first request: long enough
# for every load process to see the start signal.
START_DELAY_S = 0.2
PROGRESS_INTERVAL_S = 2.0
METRIC_PROCESSED = "fleetpulse_records_processed_total"
METRIC_ACCEPTED = "fleetpulse_records_accepted_total"
METRIC_QUEUE_DEPTH = "fleetpulse_queue_depth_records"


class MeasuredServer(Protocol):
    """The server under test as the load run reads it: a ServerChild, or the roles of a
    distributed deployment together."""

    @property
    def url(self) -> str: ...

    def metrics(self, client: httpx.Client) -> dict[str, float]: ...

    def cpu_s(self) -> float: ...

    def peak_rss_mib(self) -> float: ...


@dataclass
class LoadOptions:
    """One benchmark run. ``rate_rps`` is offered records/s, None for as fast as possible."""

    duration_s: float = 20.0
    rate_rps: float | None = None
    batch: int = 1000
    ndjson: bool = False
    vehicles: int = 1000
    connections: int = 8
    load_processes: int = 1
    pool_records: int | None = None
    marker_interval_ms: float = 200.0
    poll_interval_ms: float = 5.0
    e2e_grace_s: float = 5.0
    seed: int = 1
    server_log_level: str = "info"
    keep_data: bool = False
    label: str = ""
    command: list[str] = field(default_factory=list)

    def pool_size(self) -> int:
        """Return the number of records pre-encoded over all load processes."""
        if self.pool_records is not None:
            return self.pool_records
        if self.rate_rps is None:
            rate_rps = min(MAX_RATE_POOL_RPS, self.batch * MAX_RATE_POOL_REQUESTS_PER_S)
            return int(rate_rps * self.duration_s)
        return int(self.rate_rps * self.duration_s * FIXED_RATE_POOL_MARGIN)


def run_benchmark(options: LoadOptions) -> LoadReport:
    """Start a server child, run the load against it, stop everything, return the report.

    The server child and the load processes are stopped by PID on return, on an error
    and on Ctrl-C.
    """
    _check_options(options)
    with ServerChild(options.server_log_level, options.keep_data) as server:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        print(f"server pid={server.pid} url={server.url}", file=sys.stderr)
        plans = _plans(options, host, int(port))
        return _run_load(options, server, plans)


def _check_options(options: LoadOptions) -> None:
    slots = options.load_processes * options.connections
    if not 0 < options.duration_s <= MAX_DURATION_S:
        raise ValueError(f"--duration must be in (0, {MAX_DURATION_S}] s, not {options.duration_s}")
    if options.vehicles < slots:
        raise ValueError(
            f"--vehicles {options.vehicles} is fewer than the {slots} connections in all load "
            "processes; each connection needs its own vehicles, so raise --vehicles"
        )
    if options.rate_rps is not None and options.rate_rps <= 0:
        raise ValueError(f"--rate must be positive or 'max', not {options.rate_rps}")
    if options.batch < 1:
        raise ValueError(f"--batch must be at least 1, not {options.batch}")


def _plans(options: LoadOptions, host: str, port: int) -> list[WorkerPlan]:
    """Split vehicles, records and rate evenly over load processes and connections."""
    slots = options.load_processes * options.connections
    device_ids = [f"bench-{index:06d}" for index in range(options.vehicles)]
    per_connection = math.ceil(options.pool_size() / slots)
    rate_per_connection = None if options.rate_rps is None else options.rate_rps / slots
    plans = []
    for process_index in range(options.load_processes):
        first_slot = process_index * options.connections
        plans.append(
            WorkerPlan(
                host=host,
                port=port,
                process_index=process_index,
                device_ids_per_connection=[
                    device_ids[slot::slots]
                    for slot in range(first_slot, first_slot + options.connections)
                ],
                records_per_connection=per_connection,
                batch=options.batch,
                ndjson=options.ndjson,
                seed=options.seed,
                rate_per_connection_rps=rate_per_connection,
                duration_s=options.duration_s,
                marker_interval_s=options.marker_interval_ms / 1000,
                poll_interval_s=options.poll_interval_ms / 1000,
                e2e_grace_s=options.e2e_grace_s,
            )
        )
    return plans


def _run_load(
    options: LoadOptions, server: MeasuredServer, plans: list[WorkerPlan]
) -> LoadReport:
    context = multiprocessing.get_context("spawn")
    ready = [context.Event() for _ in plans]
    go = context.Event()
    start_at = context.Value("d", 0.0)
    results = context.Queue()
    workers = [
        context.Process(
            target=run_worker,
            args=(plan, ready[index], go, start_at, results),
            name=f"load-{index}",
        )
        for index, plan in enumerate(plans)
    ]
    try:
        for worker in workers:
            worker.start()
        print(
            f"building {options.pool_size():,} records in {len(workers)} load process(es)",
            file=sys.stderr,
        )
        _wait_ready(workers, ready)

        with httpx.Client() as client:
            load_average = os.getloadavg()
            before = server.metrics(client)
            cpu_before_s = server.cpu_s()
            machine_before_s = machine_busy_s()
            start_at.value = time.monotonic() + START_DELAY_S
            go.set()
            show_progress(server, client, start_at.value + options.duration_s, before)
            after = server.metrics(client)
            cpu_after_s = server.cpu_s()
            machine_after_s = machine_busy_s()
            peak_rss_mib = server.peak_rss_mib()

        worker_results = _collect(workers, results, options)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join(timeout=10)

    return build_report(
        options,
        worker_results,
        processed=after.get(METRIC_PROCESSED, 0.0) - before.get(METRIC_PROCESSED, 0.0),
        queue_depth_start=before.get(METRIC_QUEUE_DEPTH, 0.0),
        queue_depth_end=after.get(METRIC_QUEUE_DEPTH, 0.0),
        server_cpu_s=cpu_after_s - cpu_before_s,
        server_peak_rss_mib=peak_rss_mib,
        machine_busy_s=machine_after_s - machine_before_s,
        load_average=load_average,
    )


def _wait_ready(
    workers: Sequence[multiprocessing.process.BaseProcess], ready: Sequence[EventType]
) -> None:
    deadline_s = time.monotonic() + READY_TIMEOUT_S
    for worker, event in zip(workers, ready, strict=True):
        while not event.wait(0.2):
            if not worker.is_alive():
                raise RuntimeError(f"load process {worker.name} exited with {worker.exitcode}")
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"load process {worker.name} not ready in {READY_TIMEOUT_S} s")


def show_progress(
    server: MeasuredServer, client: httpx.Client, end_s: float, before: dict[str, float]
) -> None:
    """Print accepted and processed rates and the queue depth every few seconds to stderr."""
    last = before
    last_s = time.monotonic()
    while (now_s := time.monotonic()) < end_s:
        time.sleep(min(PROGRESS_INTERVAL_S, end_s - now_s))
        if time.monotonic() >= end_s:
            return
        current = server.metrics(client)
        elapsed_s = time.monotonic() - last_s
        accepted = current.get(METRIC_ACCEPTED, 0.0) - last.get(METRIC_ACCEPTED, 0.0)
        processed = current.get(METRIC_PROCESSED, 0.0) - last.get(METRIC_PROCESSED, 0.0)
        print(
            f"  {end_s - time.monotonic():5.1f} s left: accepted {accepted / elapsed_s:9,.0f} "
            f"rec/s, processed {processed / elapsed_s:9,.0f} rec/s, "
            f"queue {current.get(METRIC_QUEUE_DEPTH, 0.0):9,.0f} records",
            file=sys.stderr,
        )
        last, last_s = current, time.monotonic()


def _collect(
    workers: Sequence[multiprocessing.process.BaseProcess],
    results: multiprocessing.queues.Queue[WorkerResult],
    options: LoadOptions,
) -> list[WorkerResult]:
    # Results are read before join: a process with a large result blocks in its exit
    # until the parent has read the pipe.
    timeout_s = options.e2e_grace_s + 30.0
    collected = []
    for _ in workers:
        collected.append(results.get(timeout=timeout_s))
    return sorted(collected, key=lambda result: result.process_index)


def parse_rate(text: str) -> float | None:
    """Parse ``--rate``: ``max`` or a positive number of records per second."""
    if text.lower() == "max":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid rate {text!r}: give records per second, such as 20000, or 'max'"
        ) from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"invalid rate {text!r}: it must be positive")
    return rate


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser of this script."""
    parser = argparse.ArgumentParser(
        description="Load-test `fleetpulse run` over HTTP on 127.0.0.1 and report accepted "
        "and processed records/s, latency and CPU. Progress goes to stderr, the summary "
        "to stdout.",
    )
    defaults = LoadOptions()
    parser.add_argument("--duration", type=float, default=defaults.duration_s, metavar="S",
                        help=f"seconds of load, at most {MAX_DURATION_S:g} (default 20)")
    parser.add_argument("--rate", type=parse_rate, default=None, metavar="RPS|max",
                        help="offered records/s over all connections, or 'max' to send as "
                        "fast as the server acknowledges (default max)")
    parser.add_argument("--batch", type=int, default=defaults.batch, metavar="N",
                        help="records per request; 1 sends a bare JSON object (default 1000)")

    parser.add_argument("--ndjson", action="store_true",
                        help="send application/x-ndjson bodies instead of JSON arrays")
    parser.add_argument("--vehicles", type=int, default=defaults.vehicles, metavar="N",
                        help="vehicles, each sending one record per second of device time "
                        "(default 1000)")
    parser.add_argument("--connections", type=int, default=defaults.connections, metavar="N",
                        help="keep-alive connections per load process (default 8)")
    parser.add_argument("--load-processes", type=int, default=defaults.load_processes,
                        metavar="N", help="load generator processes (default 1)")

    parser.add_argument("--pool-records", type=int, default=None, metavar="N",
                        help="records to pre-encode in all (default: rate x duration x 1.1, "
                        f"or min({MAX_RATE_POOL_RPS:,}, batch x "
                        f"{MAX_RATE_POOL_REQUESTS_PER_S:,}) x duration for --rate max)")
    parser.add_argument("--marker-interval-ms", type=float,
                        default=defaults.marker_interval_ms, metavar="MS",
                        help="pause between end-to-end probes per load process (default 200)")
    parser.add_argument("--poll-interval-ms", type=float, default=defaults.poll_interval_ms,
                        metavar="MS", help="GET /v1/vehicles/{id} poll interval of a probe, "
                        "which bounds the end-to-end resolution (default 5)")
    parser.add_argument("--e2e-grace", type=float, default=defaults.e2e_grace_s, metavar="S",
                        help="seconds a probe keeps polling after the load ends (default 5)")

    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="random seed of the simulated vehicles (default 1)")
    parser.add_argument("--server-log-level", default=defaults.server_log_level,
                        choices=["debug", "info", "warning", "error"],
                        help="the server child's --log-level (default info)")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the server's temporary data folder and log")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    return parser


def options_from_args(args: argparse.Namespace, command: list[str]) -> LoadOptions:
    """Turn parsed arguments into LoadOptions, keeping ``command`` for the report."""
    return LoadOptions(
        duration_s=args.duration,
        rate_rps=args.rate,
        batch=args.batch,
        ndjson=args.ndjson,
        vehicles=args.vehicles,
        connections=args.connections,
        load_processes=args.load_processes,
        pool_records=args.pool_records,
        marker_interval_ms=args.marker_interval_ms,
        poll_interval_ms=args.poll_interval_ms,
        e2e_grace_s=args.e2e_grace,
        seed=args.seed,
        server_log_level=args.server_log_level,
        keep_data=args.keep_data,
        command=command,
    )


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark from the command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # httpx logs every request at info, which would bury the progress lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = options_from_args(args, ["benchmarks/http_load.py", *argv])
    try:
        report = run_benchmark(options)
    except ValueError as exc:
        print(f"http_load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("http_load: interrupted; the server child and load processes are stopped",
              file=sys.stderr)
        return 130

    print(format_summary(report))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
