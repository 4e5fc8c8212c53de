"""Requests per second of one-record POSTs: fleetpulse against a trivial app on the same stack.

The trivial app is a Starlette route that reads the body and returns a fixed 202 JSON
response, served by ``fleetpulse.httpserve.start_uvicorn`` on uvloop, as ``fleetpulse
run`` serves its API. It is the ceiling for one record per request on this stack: the
difference to ``fleetpulse run`` is what fleetpulse adds per request (decoding,
validation, the queue's group commit, metrics, middleware).

    .venv/bin/python benchmarks/request_ceiling.py --duration 10 --connections 64

Each target runs in its own child process, and the load runs in this process over raw
keep-alive connections, one request in flight per connection. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import uvloop

from fleet_payloads import JSON_TYPE, build_pool, http_post
from server_child import tree_cpu_s

READY_TIMEOUT_S = 30.0
# One-record requests built before the clock starts, sent round robin.
POOL_REQUESTS = 200_000

_TRIVIAL_SERVER = """
import asyncio, sys
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from fleetpulse.httpserve import bind_tcp, start_uvicorn

BODY = b'{"accepted":1,"rejected":0,"errors":[],"errors_truncated":0}'

async def telemetry(request: Request) -> Response:
    await request.body()
    return Response(BODY, status_code=202, media_type="application/json")

async def main() -> None:
    sock = bind_tcp("127.0.0.1", 0, "")
    app = Starlette(routes=[Route("/v1/telemetry", telemetry, methods=["POST"])])
    server, task = await start_uvicorn(app, sock, "trivial")
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await task

with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
    runner.run(main())
"""


def start_target(kind: str, data_dir: str) -> tuple[subprocess.Popen[str], int]:
    """Start the trivial app or ``fleetpulse run`` and return the child and its port."""
    if kind == "trivial":
        command = [sys.executable, "-c", _TRIVIAL_SERVER]
    else:
        command = [
            sys.executable, "-m", "fleetpulse.cli.main", "run", "--host", "127.0.0.1",
            "--port", "0", "--data-dir", data_dir, "--log-level", "warning",
        ]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        if "http://127.0.0.1:" in line:
            port = int(line.split("http://127.0.0.1:")[1].split("/")[0].split()[0])
            return child, port
    stop_target(child)
    raise RuntimeError(f"the {kind} server did not print its address within {READY_TIMEOUT_S} s")


def stop_target(child: subprocess.Popen[str]) -> None:
    """Stop a target child by its process id."""
    if child.poll() is None:
        os.kill(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


async def load(port: int, requests: list[bytes], connections: int, duration_s: float) -> int:
    """Send ``requests`` round robin over ``connections`` for ``duration_s``; return 2xx count."""
    done = 0
    deadline = time.monotonic() + duration_s

    async def connection(offset: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        index = offset
        try:
            while time.monotonic() < deadline:
                writer.write(requests[index % len(requests)])
                index += connections
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 2"):
                    done += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection(offset) for offset in range(connections)))
    return done


class RequestRate(msgspec.Struct):
    """One target's completed one-record requests per second and its CPU per request."""

    target: str
    requests_per_s: float
    server_cpu_pct: float
    cpu_us_per_request: float


def measure_request_rates(
    duration_s: float,
    connections: int,
    vehicles: int,
    pool_requests: int = POOL_REQUESTS,
    quiet: bool = False,
) -> list[RequestRate]:
    """Drive the trivial app, then ``fleetpulse run``, with the same requests; return both.

    A run that sends all ``pool_requests`` requests starts again at the first, so records
    repeat and ``fleetpulse run`` stores each one once.
    """
    device_ids = [f"veh-{number:05d}" for number in range(vehicles)]
    pool = build_pool(device_ids, pool_requests, 1, ndjson=False, seed=3)
    requests = pool.requests
    assert requests[0].startswith(http_post(b"/v1/telemetry", JSON_TYPE, b"")[:20])

    rates = []
    for kind in ("trivial", "fleetpulse"):
        with tempfile.TemporaryDirectory(prefix="fleetpulse-ceiling-") as data_dir:
            child, port = start_target(kind, data_dir)
            try:
                started_cpu = tree_cpu_s(child.pid)
                done = uvloop.run(load(port, requests, connections, duration_s))
                cpu_s = tree_cpu_s(child.pid) - started_cpu
            finally:
                stop_target(child)
        rate = RequestRate(
            target=kind,
            requests_per_s=done / duration_s,
            server_cpu_pct=100.0 * cpu_s / duration_s,
            cpu_us_per_request=cpu_s / max(done, 1) * 1e6,
        )
        rates.append(rate)
        if not quiet:
            print(
                f"{kind:<10} {rate.requests_per_s:8,.0f} requests/s  server CPU "
                f"{rate.server_cpu_pct:4.0f} % of one core  "
                f"{rate.cpu_us_per_request:6.0f} us CPU per request",
                flush=True,
            )
    return rates


def main(argv: list[str] | None = None) -> int:
    """Measure both targets from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per target")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--vehicles", type=int, default=1000, help="vehicles sending records")
    parser.add_argument("--json", metavar="FILE", help="also write both rates as JSON to FILE")
    args = parser.parse_args(argv)

    rates = measure_request_rates(args.duration, args.connections, args.vehicles)
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(rates)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
