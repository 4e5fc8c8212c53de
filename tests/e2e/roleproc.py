"""Start ``fleetpulse ingest``, ``process`` or ``api`` in child processes on loopback.

Used by the distributed end-to-end test and by ``benchmarks/distributed.py``. Every
child reads the same settings file, gets its own data folder and a free port, and is
stopped by its PID.
"""

from __future__ import annotations

import json
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
# A role connects to NATS and PostgreSQL before it listens, which takes a while on a
# loaded machine.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def write_config(
    path: Path,
    nats_url: str,
    postgres_dsn: str,
    partitions: int,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write the settings file that every role of one deployment reads.

    ``overrides`` adds or replaces keys by section, such as ``{"nats": {"stream": "x"}}``.
    """
    sections: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1"},
        "queue": {"backend": "jetstream", "partitions": partitions},
        "nats": {"url": nats_url},
        "store": {"backend": "postgres"},
        "postgres": {"dsn": postgres_dsn},
        "live": {"bus": "nats"},
    }
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def upgrade_database(config: Path) -> None:
    """Run ``fleetpulse db upgrade``. Raises RuntimeError with its output if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "fleetpulse.cli.main", "db", "upgrade", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"fleetpulse db upgrade failed: {done.stdout}{done.stderr}")


class RoleProcess:
    """One ``fleetpulse <role>`` child process with its own data folder and log file."""

    def __init__(self, role: str, config: Path, folder: Path, name: str | None = None) -> None:
        self.role = role
        self.name = name or role
        self.config = config
        self.data_dir = folder / f"{self.name}-data"
        self.log_path = folder / f"{self.name}.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        """Return the child's PID. Raises RuntimeError before ``start``."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} not started")
        return self.proc.pid

    def start(self) -> RoleProcess:
        """Start the role on a free loopback port and wait until it prints its address."""
        log_file = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetpulse.cli.main",
                self.role,
                "--config",
                str(self.config),
                "--data-dir",
                str(self.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env=dict(os.environ),
        )
        log_file.close()
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
        raise RuntimeError(
            f"fleetpulse {self.role} did not start; the end of {self.log_path}:\n"
            + self.log_path.read_text()[-3000:]
        )

    def alive(self) -> bool:
        """Return whether the child is still running."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Kill the child with SIGKILL, as a crash of its machine would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int | None:
        """Stop the child with SIGTERM (SIGKILL after a timeout) and return its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def get(self, path: str, **params: Any) -> Any:
        """GET a JSON document from the role's HTTP endpoint."""
        response = httpx.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def metric(self, name: str) -> float:
        """Return the sum of one Prometheus metric's samples on this role."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log_tail(self, chars: int = 3000) -> str:
        """Return the end of the child's log, for assertion messages."""
        return self.log_path.read_text(errors="replace")[-chars:]
