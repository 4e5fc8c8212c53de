"""A NATS server with JetStream for tests: its own process on a free loopback port, stopped by PID.

If the ``nats-server`` binary is missing, tests that use the server fail when the
environment variable ``CI`` is set and are skipped otherwise.

Use the ``nats_server`` fixture in tests, or ``start_nats_server(tmp_dir)`` as a context
manager from end-to-end tests and benchmarks::

    with start_nats_server(tmp_path) as server:
        settings = ...  # [nats] url = server.url
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# nats-server starts in well under a second; 10 s allows for a loaded CI machine.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
HOST = "127.0.0.1"


@dataclass
class NatsServer:
    """A running nats-server with JetStream storing its files under ``store_dir``."""

    host: str
    port: int
    store_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def find_nats_server() -> str | None:
    """Return the path of the nats-server binary, or None when it is not installed."""
    return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")


def require_nats_server() -> str:
    """Return the nats-server binary; fail the test under CI and skip it otherwise."""
    binary = find_nats_server()
    if binary is None:
        message = "nats-server is not installed (apt-get install nats-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_accepting(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_tail = log_path.read_text(errors="replace")[-2000:].strip()
            raise RuntimeError(
                f"nats-server exited with status {process.returncode}; its log: {log_tail}"
            )
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nats-server did not accept connections on port {port} in time")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def start_nats_server(
    tmp_dir: Path, binary: str | None = None, port: int | None = None
) -> Iterator[NatsServer]:
    """Start nats-server with JetStream on a free loopback port; stop it by PID on exit.

    Pass the ``port`` and ``tmp_dir`` of a stopped server to restart it with its streams,
    as clients reconnect to the same address.

    JetStream stores its files under ``tmp_dir / "nats"`` and the server logs to
    ``tmp_dir / "nats-server.log"`` (a file, so a long test cannot fill a pipe and stall
    the server). Raises RuntimeError when the binary is missing or the server does not
    start; callers outside pytest decide whether that is a skip or a failure.
    """
    binary = binary or find_nats_server()
    if binary is None:
        raise RuntimeError("nats-server is not installed (apt-get install nats-server)")
    store_dir = tmp_dir / "nats"
    store_dir.mkdir(parents=True, exist_ok=True)
    log_path = tmp_dir / "nats-server.log"
    port = port or _free_port()
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [binary, "-js", "-a", HOST, "-p", str(port), "-sd", str(store_dir)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_accepting(port, process, log_path)
        yield NatsServer(HOST, port, store_dir, log_path, process)
    finally:
        _stop(process)


@pytest.fixture(name="nats_server")
def nats_server_fixture(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream for one test, stopped by PID afterwards."""
    binary = require_nats_server()
    with start_nats_server(tmp_path, binary) as server:
        yield server
