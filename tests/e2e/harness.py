"""Helpers of the crash, overload and disk-full harnesses: pinned ports, peak memory, truth.

A server restarted after SIGKILL must come back on the same ports, because the simulator
keeps sending to the address it was given. ``PinnedServer`` starts ``fleetpulse run``
on ports chosen once, and reports the child's peak resident memory from /proc.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fleetpulse.sim.truth import read_truth
from tests.e2e.serverproc import START_TIMEOUT_S, URL_PATTERN, ServerProcess

ALL_TIME = {"from": 0, "to": 2**62}
# Event types whose every occurrence the simulator injects on purpose and records.
INJECTED_EVENT_TYPES = ("overspeed", "harsh_braking", "harsh_acceleration", "idling",
                        "gps_jump", "fuel_drop", "dtc", "engine_overheat", "low_fuel")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PinnedServer(ServerProcess):
    """A ``fleetpulse run`` child that listens on the same HTTP port at every start."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, env)
        self.port = port
        self.peak_rss_kib = 0

    def start(self) -> PinnedServer:
        """Start the server on ``port`` and wait until it prints its address."""
        log_file = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fleetpulse.cli.main", "run", "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(self.data_dir)],
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

    def sample_peak_rss(self) -> int:
        """Read the child's peak resident memory (VmHWM) in KiB and keep the maximum seen.

        VmHWM is the high-water mark of the process since it started, so sampling it
        once before the process ends catches every peak.
        """
        if self.proc is None or self.proc.poll() is not None:
            return self.peak_rss_kib
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return self.peak_rss_kib
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        return self.peak_rss_kib

    def kill(self) -> None:
        """Record the peak memory, then kill the server with SIGKILL."""
        self.sample_peak_rss()
        super().kill()

    def stop(self) -> int:
        """Record the peak memory, then stop the server with SIGTERM."""
        self.sample_peak_rss()
        return super().stop()

    def stored_timestamps(self, device_id: str) -> list[int]:
        """Return the ts_ms of every stored record of a vehicle, in the order served."""
        stamps: list[int] = []
        params: dict[str, Any] = {"from": 0, "to": 2**62, "limit": 10_000}
        path = f"/v1/vehicles/{device_id}/positions"
        while True:
            page = self.get(path, **params)
            stamps.extend(p["ts_ms"] for p in page["positions"])
            if page["next"] is None:
                return stamps
            params["from"] = page["positions"][-1]["ts_ms"] + 1

    def events(self, device_ids: list[str]) -> list[dict[str, Any]]:
        """Return every stored event of the vehicles, one query per vehicle.

        Fails if a vehicle has more than 10,000 events, the maximum page.
        """
        events: list[dict[str, Any]] = []
        for device_id in device_ids:
            page = self.get("/v1/events", device_id=device_id, limit=10_000, **ALL_TIME)
            assert page["next"] is None, f"{device_id} has over 10,000 events: shorten the run"
            events.extend(page["events"])
        return events


def truth_expectations(truth_path: Path) -> dict[str, Any]:
    """Read a simulator truth file: records per run, injected events and trips per vehicle."""
    entries, summary = read_truth(truth_path)
    return {
        "records_generated": summary.records_generated,
        "events": Counter(
            (entry.device_id, entry.event) for entry in entries
            if entry.event in INJECTED_EVENT_TYPES
        ),
        "trips": Counter(entry.device_id for entry in entries if entry.type == "trip"),
    }


def simulate_command(url: str, truth: Path, summary: Path, *, vehicles: int, duration_s: int,
                     seed: int, protocol: str = "http") -> list[str]:
    """Build the ``fleetpulse simulate`` command line of one deterministic run at max speed."""
    return [sys.executable, "-m", "fleetpulse.cli.main", "simulate", "--protocol", protocol,
            "--vehicles", str(vehicles), "--rate", "1", "--duration", str(duration_s),
            "--speed", "max", "--seed", str(seed), "--url", url,
            "--truth", str(truth), "--json-summary", str(summary)]
