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

import uvloop

from fleet_payloads import JSON_TYPE, build_pool, http_post

READY_TIMEOUT_S = 30.0

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


def main(argv: list[str] | None = None) -> int:
    """Measure both targets from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per target")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--vehicles", type=int, default=1000, help="vehicles sending records")
    args = parser.parse_args(argv)

    device_ids = [f"veh-{number:05d}" for number in range(args.vehicles)]
    pool = build_pool(device_ids, 200_000, 1, ndjson=False, seed=3)
    requests = pool.requests
    assert requests[0].startswith(http_post(b"/v1/telemetry", JSON_TYPE, b"")[:20])

    for kind in ("trivial", "fleetpulse"):
        with tempfile.TemporaryDirectory(prefix="fleetpulse-ceiling-") as data_dir:
            child, port = start_target(kind, data_dir)
            try:
                started_cpu = _child_cpu_s(child.pid)
                done = uvloop.run(load(port, requests, args.connections, args.duration))
                cpu_s = _child_cpu_s(child.pid) - started_cpu
            finally:
                stop_target(child)
        rate = done / args.duration
        print(
            f"{kind:<10} {rate:8,.0f} requests/s  server CPU {cpu_s / args.duration:4.0%} "
            f"of one core  {cpu_s / max(done, 1) * 1e6:6.0f} us CPU per request"
        )
    return 0


def _child_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


if __name__ == "__main__":
    sys.exit(main())
