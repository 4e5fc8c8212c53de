"""Drive `fleetpulse run` with many concurrent Teltonika connections and report throughput.

Starts `fleetpulse run` with the Teltonika listener enabled in a child process (fresh data
folder, loopback only), opens ``--connections`` device connections, and has each send
Codec 8 Extended packets of ``--records-per-packet`` records, each 100 ms of device time
after the one before (starting an hour before the run), waiting for every answer, until
``--duration`` seconds have passed. Prints progress every 5 s, then the
records acknowledged and stored per second, the server's CPU over the sending window and
its peak RSS (VmHWM), both summed over the server and its child processes.

    .venv/bin/python benchmarks/teltonika_fleet.py --connections 1000 --duration 60
    .venv/bin/python benchmarks/teltonika_fleet.py --connections 200 --duration 20 --json t.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

from fleetpulse.ingest.protocols.teltonika.decoding import CODEC_8_EXTENDED, AvlRecord
from fleetpulse.ingest.protocols.teltonika.encoding import encode_imei, encode_packet
from server_child import tree_cpu_s, tree_peak_rss_mib

# How long the server may take to start, and to store what it acknowledged at the end.
START_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 60.0
PROGRESS_INTERVAL_S = 5.0
ANSWER_TIMEOUT_S = 30.0
# A record is stored once it counts as processed, or as a duplicate of one already stored.
STORED = re.compile(
    r"^fleetpulse_records_(?:processed|duplicate)_total(?:\{[^}]*\})? ([0-9.e+]+)$", re.M
)
# Device time of a connection starts this long before the run and advances by
# RECORD_INTERVAL_MS per record, as in a tracker's 10 Hz log. Every record is newer
# than the one before it, so none is late or a duplicate.
DEVICE_CLOCK_START_MS = 3_600_000
RECORD_INTERVAL_MS = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_records(api_url: str) -> int:
    text = httpx.get(f"{api_url}/metrics", timeout=10).text
    return int(sum(float(value) for value in STORED.findall(text)))


class TeltonikaReport(msgspec.Struct):
    """One run: records acknowledged over the sending window and stored by its end."""

    connections: int
    records_per_packet: int
    duration_s: float
    packets: int
    acknowledged: int
    acknowledged_rps: float
    stored: int
    stored_rps: float
    settle_s: float
    failed_connections: int
    server_cpu_s: float
    server_cpu_pct: float
    server_peak_rss_mib: float


class Counts:
    def __init__(self) -> None:
        self.acknowledged = 0
        self.packets = 0
        self.failures = 0


async def device(
    number: int, port: int, deadline_s: float, records_per_packet: int, counts: Counts
) -> None:
    imei = f"35100000{number:07d}"
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(encode_imei(imei))
        if await asyncio.wait_for(reader.readexactly(1), ANSWER_TIMEOUT_S) != b"\x01":
            raise RuntimeError(f"IMEI {imei} rejected")
        lat = 48.0 + (number % 100) / 1000
        next_ts_ms = time.time_ns() // 1_000_000 - DEVICE_CLOCK_START_MS
        while time.monotonic() < deadline_s:
            first_ts_ms = next_ts_ms
            next_ts_ms += records_per_packet * RECORD_INTERVAL_MS
            records = [
                AvlRecord(
                    ts_ms=first_ts_ms + i * RECORD_INTERVAL_MS,
                    priority=0,
                    lon=11.5 + i / 100_000,
                    lat=lat,
                    altitude_m=500,
                    angle_deg=90,
                    satellites=9,
                    speed_kmh=40,
                    event_io_id=0,
                    io={239: 1, 240: 1, 66: 13_800, 16: 1_000_000 + i},
                )
                for i in range(records_per_packet)
            ]
            writer.write(encode_packet(CODEC_8_EXTENDED, records))
            answer = await asyncio.wait_for(reader.readexactly(4), ANSWER_TIMEOUT_S)
            counts.acknowledged += int.from_bytes(answer, "big")
            counts.packets += 1
        writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, RuntimeError) as exc:
        counts.failures += 1
        print(f"device {imei} failed: {exc!r}", file=sys.stderr)


async def drive(args: argparse.Namespace, port: int) -> tuple[Counts, float]:
    counts = Counts()
    started_s = time.monotonic()
    deadline_s = started_s + args.duration
    tasks = [
        asyncio.create_task(device(n, port, deadline_s, args.records_per_packet, counts))
        for n in range(args.connections)
    ]
    while not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=PROGRESS_INTERVAL_S)
        elapsed_s = time.monotonic() - started_s
        print(
            f"  {elapsed_s:5.0f} s: {counts.acknowledged:,} records acknowledged "
            f"({counts.acknowledged / elapsed_s:,.0f}/s), {counts.failures} failed connections",
            flush=True,
        )
    return counts, time.monotonic() - started_s


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; return 0, or 1 if a connection failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000, help="device connections")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument(
        "--records-per-packet", type=int, default=10, help="records per AVL packet (1-255)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    args = parser.parse_args(argv)

    # One descriptor per connection on each side, plus the server's files.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 2 * args.connections + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    data_dir = Path(tempfile.mkdtemp(prefix="fleetpulse-bench-"))
    http_port, teltonika_port = free_port(), free_port()
    config = data_dir / "bench.toml"
    config.write_text(
        f'[server]\nport = {http_port}\ndata_dir = "{data_dir / "data"}"\nlog_level = "warning"\n'
        f"[teltonika]\nenabled = true\nport = {teltonika_port}\n"
    )
    fleetpulse = Path(sys.executable).with_name("fleetpulse")
    server = subprocess.Popen(
        [str(fleetpulse), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard)),
    )
    api_url = f"http://127.0.0.1:{http_port}"
    try:
        deadline_s = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", teltonika_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline_s or server.poll() is not None:
                    print("fleetpulse run did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        print(
            f"driving {args.connections} connections for {args.duration:g} s, "
            f"{args.records_per_packet} records per packet (server pid {server.pid})"
        )
        cpu_before_s = tree_cpu_s(server.pid)
        counts, elapsed_s = asyncio.run(drive(args, teltonika_port))
        cpu_s = tree_cpu_s(server.pid) - cpu_before_s

        settle_deadline_s = time.monotonic() + SETTLE_TIMEOUT_S
        while (stored := stored_records(api_url)) < counts.acknowledged:
            if time.monotonic() > settle_deadline_s:
                break
            time.sleep(0.5)
        settled_s = time.monotonic() - settle_deadline_s + SETTLE_TIMEOUT_S
        report = TeltonikaReport(
            connections=args.connections,
            records_per_packet=args.records_per_packet,
            duration_s=elapsed_s,
            packets=counts.packets,
            acknowledged=counts.acknowledged,
            acknowledged_rps=counts.acknowledged / elapsed_s,
            stored=stored,
            stored_rps=stored / (elapsed_s + settled_s),
            settle_s=settled_s,
            failed_connections=counts.failures,
            server_cpu_s=cpu_s,
            server_cpu_pct=100.0 * cpu_s / elapsed_s,
            server_peak_rss_mib=tree_peak_rss_mib(server.pid),
        )
        print(
            f"acknowledged: {report.acknowledged:,} records in {elapsed_s:.1f} s "
            f"= {report.acknowledged_rps:,.0f} records/s ({report.packets:,} packets)\n"
            f"stored:       {stored:,} of them {elapsed_s + settled_s:.1f} s after the start "
            f"= {report.stored_rps:,.0f} records/s\n"
            f"failed connections: {report.failed_connections}\n"
            f"server CPU while sending: {report.server_cpu_pct:.0f} % of one core\n"
            f"server peak RSS (VmHWM): {report.server_peak_rss_mib:,.0f} MiB"
        )
        if args.json:
            Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
        return 0 if counts.failures == 0 else 1
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    raise SystemExit(main())
