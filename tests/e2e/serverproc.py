"""Start ``fleetpulse run`` in a child process on loopback, as an operator would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

URL_PATTERN = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 30.0


class ServerProcess:
    """A ``fleetpulse run`` child process with its own data folder."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    def start(self) -> ServerProcess:
        """Start the server on a free loopback port and wait until it answers."""
        log_file = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetpulse.cli.main", "run", "--host", "127.0.0.1",
             "--port", "0", "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE, stderr=log_file, text=True, env=self.env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = URL_PATTERN.search(line)
            if match:
                self.url = match.group(1)
                return self
        self.kill()
        raise RuntimeError(f"server did not start; see {self.log_path}:\n"
                           + self.log_path.read_text()[-3000:])

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int:
        """Stop the server with SIGTERM and return its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON document from the server's API."""
        answer = httpx.get(self.url + path, params=params, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def wait_drained(self, timeout_s: float = 60.0) -> None:
        """Wait until the queue is empty and the processor has caught up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            health = self.get("/healthz")
            if health["queue_depth_records"] == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"queue not drained after {timeout_s} s: {health}")

    def metric(self, name: str, labels: str = "") -> float:
        """Return the sum of one Prometheus metric's samples whose labels contain ``labels``."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {") and labels in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def count_positions(self, device_id: str) -> int:
        """Count a vehicle's stored records through the paged positions API."""
        count = 0
        params: dict[str, Any] = {"from": 0, "to": 2**62, "limit": 10_000}
        path = f"/v1/vehicles/{device_id}/positions"
        while True:
            page = self.get(path, **params)
            count += page["count"]
            if page["next"] is None:
                return count
            params["from"] = page["positions"][-1]["ts_ms"] + 1
