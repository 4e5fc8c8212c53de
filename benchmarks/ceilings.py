"""Ceilings of this machine beside fleetpulse's own figures for the same work.

Three pairs, each measured in the same run on the same input:

- ``decode``: the pre-encoded JSON batches of the load benchmark, 1000 records of
  ``http_load.py``'s simulated fleet per body. Bare msgspec decodes them into
  ``list[RecordIn]``, with msgspec's own type and range checks and nothing else. Against
  it: ``decode_body``, which the HTTP ingest calls on each body, and which adds
  fleetpulse's timestamp and attribute checks and builds ``Record`` structs.
- ``store``: the same records, processed once, as the rows of the ``records`` table,
  written by a bare ``INSERT OR IGNORE`` in transactions of ``--batch`` rows into a fresh
  SQLite file with the table and indexes of ``store.db``, opened as the store opens its
  file (WAL, ``synchronous``, page cache). The ceiling is the faster of ``executemany``
  and multi-row statements of 25 rows. Against it: ``SqliteStore.write`` of the same
  processed batches, which also writes vehicles, events, trips and hourly aggregates.
- ``requests``: one-record POSTs per second to a trivial Starlette route on the same
  HTTP stack, against ``fleetpulse run`` (``request_ceiling.py``).

The decoding and SQLite pairs run in this process, one thread; the request pair runs each
server in a child process. Loopback only. Linux only, because it reads /proc.

    .venv/bin/python benchmarks/ceilings.py --json ceilings.json
    .venv/bin/python benchmarks/ceilings.py --records 20000 --request-duration 1  # quick
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from fleet_payloads import build_pool
from fleetpulse.config import QueueSettings, Settings
from fleetpulse.ingest.decode import decode_body
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.process.batch import process_records
from fleetpulse.process.chain import build_chain
from fleetpulse.process.state import VehicleState
from fleetpulse.store._sqlite_connect import Synchronous, connect_writer
from fleetpulse.store._sqlite_rows import record_row
from fleetpulse.store._sqlite_schema import SCHEMA_V1
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.sqlite import WRITER_CACHE_KIB, SqliteStore
from request_ceiling import measure_request_rates

# The load benchmark's default batch, fleet and seed, so that the bodies match its own.
BODY_RECORDS = 1000
VEHICLES = 1000
SEED = 1
JSON_CONTENT_TYPE = "application/json"
# Each decoder runs over the bodies for this long in all (default of --decode-seconds),
# in rounds that alternate.
MIN_DECODE_S = 1.5
DECODE_ROUNDS = 3
# The bare insert runs once with executemany and once with multi-row INSERTs of this
# many rows, and the faster one is the ceiling: which wins depends on the SQLite build.
BARE_ROWS_PER_STATEMENT = (1, 25)


class Ceiling(msgspec.Struct):
    """One pair: the bare ceiling's rate, fleetpulse's rate for the same work, the ratio."""

    name: str
    unit: str
    ceiling: str
    ceiling_rate: float
    fleetpulse: str
    fleetpulse_rate: float
    ratio: float
    detail: str


def bodies_of_pool(records: int) -> list[bytes]:
    """Return the JSON bodies of ``records`` records as ``http_load.py`` pre-encodes them."""
    device_ids = [f"bench-{index:06d}" for index in range(VEHICLES)]
    pool = build_pool(device_ids, records, BODY_RECORDS, ndjson=False, seed=SEED)
    return [request.partition(b"\r\n\r\n")[2] for request in pool.requests]


def rate_of(run: Callable[[], int], min_s: float) -> float:
    """Call ``run`` (it returns the records it handled) until ``min_s`` passed; return rec/s."""
    handled = 0
    started = time.perf_counter()
    while True:
        handled += run()
        elapsed_s = time.perf_counter() - started
        if elapsed_s >= min_s:
            return handled / elapsed_s


def measure_decode(
    bodies: list[bytes], settings: Settings, min_s: float = MIN_DECODE_S
) -> tuple[Ceiling, list[Record]]:
    """Compare bare msgspec decoding with ``decode_body``; return the pair and the records."""
    bare_decoder = msgspec.json.Decoder(list[RecordIn])

    def bare() -> int:
        return sum(len(bare_decoder.decode(body)) for body in bodies)

    received_at_ms = time.time_ns() // 1_000_000
    records: list[Record] = []

    def fleetpulse() -> int:
        records.clear()
        for body in bodies:
            batch = decode_body(body, JSON_CONTENT_TYPE, received_at_ms, settings)
            if batch.rejects:
                raise RuntimeError(
                    f"decode_body rejected {len(batch.rejects)} generated records, first: "
                    f"{batch.rejects[0].detail}; fix the generator in fleet_payloads.py"
                )
            records.extend(batch.records)
        return len(records)

    # Alternating rounds, best of each: other work on the machine slows some rounds, and
    # the best round is the closest to what the code itself costs.
    bare_rates, fleetpulse_rates = [], []
    for _ in range(DECODE_ROUNDS):
        bare_rates.append(rate_of(bare, min_s / DECODE_ROUNDS))
        fleetpulse_rates.append(rate_of(fleetpulse, min_s / DECODE_ROUNDS))
    bare_rps, fleetpulse_rps = max(bare_rates), max(fleetpulse_rates)
    pair = Ceiling(
        name="decode",
        unit="records/s",
        ceiling="bare msgspec into list[RecordIn]",
        ceiling_rate=bare_rps,
        fleetpulse="decode_body (decode + validate)",
        fleetpulse_rate=fleetpulse_rps,
        ratio=fleetpulse_rps / bare_rps,
        detail=f"{len(bodies)} JSON bodies of {BODY_RECORDS} records, one thread, best of "
        f"{DECODE_ROUNDS} alternating rounds",
    )
    return pair, records


def measure_store(records: list[Record], settings: Settings, batch: int) -> Ceiling:
    """Compare a bare batched SQLite insert of the record rows with ``SqliteStore.write``."""
    chain = build_chain(settings)
    states: dict[str, VehicleState] = {}
    now_ms = time.time_ns() // 1_000_000
    batches = [
        process_records(states, records[start : start + batch], settings, now_ms, chain)
        for start in range(0, len(records), batch)
    ]
    synchronous = settings.store.synchronous

    with tempfile.TemporaryDirectory(prefix="fleetpulse-ceiling-") as folder:
        bare_s = {
            rows: _bare_insert_s(Path(folder) / f"bare-{rows}.db", batches, synchronous, rows)
            for rows in BARE_ROWS_PER_STATEMENT
        }
        fleetpulse_s = asyncio.run(_store_write_s(settings, folder, batches))

    count = len(records)
    fastest = min(bare_s, key=lambda rows: bare_s[rows])
    tried = ", ".join(f"{count / seconds:,.0f} rows/s with {rows} row(s) per statement"
                      for rows, seconds in bare_s.items())
    return Ceiling(
        name="store",
        unit="records/s",
        ceiling="bare INSERT of the records rows",
        ceiling_rate=count / bare_s[fastest],
        fleetpulse="SqliteStore.write",
        fleetpulse_rate=count / fleetpulse_s,
        ratio=bare_s[fastest] / fleetpulse_s,
        detail=f"{count:,} rows, {batch:,} per transaction, synchronous = {synchronous}; "
        f"the ceiling is the faster of {tried}",
    )


def _bare_insert_s(
    path: Path, batches: list[ProcessedBatch], synchronous: Synchronous, rows_per_statement: int
) -> float:
    """Insert the record rows of ``batches``, one transaction per batch; return the seconds.

    ``rows_per_statement`` 1 runs ``executemany`` on a one-row INSERT. A larger value
    binds that many rows to one multi-row INSERT, and inserts the remainder with
    ``executemany``.
    """
    # The store's own connection settings: WAL, the synchronous level and its page cache.
    connection = connect_writer(path, synchronous, WRITER_CACHE_KIB)
    try:
        # The records table and its two indexes, exactly as store.db creates them.
        for statement in SCHEMA_V1:
            if "CREATE TABLE records" in statement or " ON records " in statement:
                connection.execute(statement)
        columns = len(record_row(batches[0].records[0]))
        row_values = f"({', '.join('?' * columns)})"
        single = f"INSERT OR IGNORE INTO records VALUES {row_values}"
        all_values = ", ".join([row_values] * rows_per_statement)
        multi = f"INSERT OR IGNORE INTO records VALUES {all_values}"
        started = time.perf_counter()
        for processed in batches:
            rows = [record_row(enriched) for enriched in processed.records]
            whole = len(rows) - len(rows) % rows_per_statement if rows_per_statement > 1 else 0
            connection.execute("BEGIN")
            for start in range(0, whole, rows_per_statement):
                chunk = rows[start : start + rows_per_statement]
                connection.execute(multi, [value for row in chunk for value in row])
            connection.executemany(single, rows[whole:])
            connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


async def _store_write_s(settings: Settings, folder: str, batches: list[ProcessedBatch]) -> float:
    server = msgspec.structs.replace(settings.server, data_dir=str(Path(folder) / "store"))
    store = SqliteStore(msgspec.structs.replace(settings, server=server))
    await store.start()
    try:
        started = time.perf_counter()
        for processed in batches:
            await store.write(processed)
        return time.perf_counter() - started
    finally:
        await store.close()


def measure_requests(
    duration_s: float, connections: int, pool_requests: int, quiet: bool
) -> Ceiling:
    """Compare the trivial route's one-record requests/s with ``fleetpulse run``'s."""
    trivial, fleetpulse = measure_request_rates(
        duration_s, connections, VEHICLES, pool_requests, quiet=quiet
    )
    return Ceiling(
        name="requests",
        unit="requests/s",
        ceiling="trivial Starlette route, same uvicorn stack",
        ceiling_rate=trivial.requests_per_s,
        fleetpulse="fleetpulse run, POST /v1/telemetry, 1 record",
        fleetpulse_rate=fleetpulse.requests_per_s,
        ratio=fleetpulse.requests_per_s / trivial.requests_per_s
        if trivial.requests_per_s
        else 0.0,
        detail=f"{connections} connections, {duration_s:g} s per target; server CPU "
        f"{trivial.server_cpu_pct:.0f} % / {fleetpulse.server_cpu_pct:.0f} % of one core",
    )


def measure_ceilings(
    records: int,
    batch: int,
    request_duration_s: float,
    connections: int,
    pool_requests: int,
    decode_s: float = MIN_DECODE_S,
    quiet: bool = False,
) -> list[Ceiling]:
    """Measure the three pairs; print one line per pair unless ``quiet``."""
    settings = Settings()
    bodies = bodies_of_pool(records)
    decode_pair, decoded = measure_decode(bodies, settings, decode_s)
    pairs = [decode_pair, measure_store(decoded, settings, batch)]
    if not quiet:
        for pair in pairs:
            print(format_pair(pair), flush=True)
    request_pair = measure_requests(request_duration_s, connections, pool_requests, quiet)
    if not quiet:
        print(format_pair(request_pair), flush=True)
    return [*pairs, request_pair]


def format_pair(pair: Ceiling) -> str:
    """Render one pair as a line for a terminal."""
    return (
        f"{pair.name:<9} ceiling {pair.ceiling_rate:>11,.0f} {pair.unit}  fleetpulse "
        f"{pair.fleetpulse_rate:>11,.0f}  = {pair.ratio:6.1%} of the ceiling  ({pair.detail})"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure the ceilings from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000, metavar="N",
                        help="records decoded and written (default 200000)")
    parser.add_argument("--batch", type=int, default=QueueSettings().fetch_max_records,
                        metavar="N", help="rows per SQLite transaction, and records per "
                        "processed batch (default: the queue.fetch_max_records default)")
    parser.add_argument("--decode-seconds", type=float, default=MIN_DECODE_S, metavar="S",
                        help=f"seconds of decoding per decoder (default {MIN_DECODE_S:g})")
    parser.add_argument("--request-duration", type=float, default=10.0, metavar="S",
                        help="seconds of one-record requests per target (default 10)")
    parser.add_argument("--connections", type=int, default=64, metavar="N",
                        help="keep-alive connections of the request pair (default 64)")
    parser.add_argument("--pool-requests", type=int, default=200_000, metavar="N",
                        help="one-record requests built before the clock (default 200000)")
    parser.add_argument("--json", metavar="FILE", help="also write the pairs as JSON to FILE")
    args = parser.parse_args(argv)
    if args.records < BODY_RECORDS or args.batch < 1:
        parser.error(f"--records must be at least {BODY_RECORDS} and --batch at least 1")

    pairs = measure_ceilings(
        args.records, args.batch, args.request_duration, args.connections, args.pool_requests,
        args.decode_seconds,
    )
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(pairs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
