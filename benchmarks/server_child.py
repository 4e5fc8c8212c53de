"""The server under test: ``fleetpulse run`` in a child process, and what it costs.

CPU time and peak RSS come from ``/proc/<pid>``, so this module runs on Linux only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

log = logging.getLogger(__name__)

URL_PATTERN = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 30.0
# SIGTERM lets the server close its SQLite files; after this long it gets SIGKILL.
STOP_TIMEOUT_S = 20.0
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


class ServerChild:
    """``fleetpulse run`` on a free 127.0.0.1 port with a fresh temporary data folder.

    Use as a context manager: leaving the block stops the child by PID (SIGTERM, then
    SIGKILL) and deletes the data folder unless ``keep_data`` is set.
    """

    def __init__(self, log_level: str = "info", keep_data: bool = False) -> None:
        self.log_level = log_level
        self.keep_data = keep_data
        self.data_dir = Path(tempfile.mkdtemp(prefix="fleetpulse-bench-"))
        self.log_path = self.data_dir / "server.log"
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        """Return the child's process id. Raises RuntimeError before ``start``."""
        if self.proc is None:
            raise RuntimeError("server child not started")
        return self.proc.pid

    def __enter__(self) -> ServerChild:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the child and wait until it prints its URL.

        Raises RuntimeError with the tail of the server log if it does not start within
        ``START_TIMEOUT_S``.
        """
        command = [
            sys.executable, "-m", "fleetpulse.cli.main", "run",
            "--host", "127.0.0.1", "--port", "0",
            "--data-dir", str(self.data_dir / "data"), "--log-level", self.log_level,
        ]
        with open(self.log_path, "a") as server_log:
            # A new session keeps Ctrl-C away from the child, so that stop() decides how
            # it ends and the measurement of the last seconds is not cut.
            self.proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=server_log, text=True,
                start_new_session=True,
            )
        log.info("server child started pid=%d data_dir=%s", self.proc.pid, self.data_dir)

        assert self.proc.stdout is not None
        deadline_s = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline_s:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = URL_PATTERN.search(line)
            if match:
                self.url = match.group(1)
                return
        self.stop()
        raise RuntimeError(
            f"the server child did not print its URL within {START_TIMEOUT_S} s; "
            f"its log ends with:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the child by PID (SIGTERM, SIGKILL after ``STOP_TIMEOUT_S``). Safe to repeat."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("server child pid=%d ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait()
            log.info("server child stopped pid=%d exit=%s", proc.pid, proc.returncode)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if not self.keep_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def cpu_s(self) -> float:
        """Return the child's user plus system CPU seconds, all threads, from /proc."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command name in brackets may contain spaces, so split after its ")".
        fields = stat.rpartition(")")[2].split()
        utime_ticks, stime_ticks = int(fields[11]), int(fields[12])
        return (utime_ticks + stime_ticks) / CLOCK_TICKS_PER_S

    def peak_rss_mib(self) -> float:
        """Return the child's peak resident set size (VmHWM) in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"/proc/{self.pid}/status has no VmHWM line")

    def metrics(self, client: httpx.Client) -> dict[str, float]:
        """Scrape ``/metrics`` and return each sample name's sum over all label sets."""
        response = client.get(self.url + "/metrics", timeout=10.0)
        response.raise_for_status()
        totals: dict[str, float] = {}
        for line in response.text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_and_labels, _, value = line.rpartition(" ")
            name = name_and_labels.partition("{")[0]
            totals[name] = totals.get(name, 0.0) + float(value)
        return totals

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-3000:]
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"


def machine_busy_s() -> float:
    """Return the CPU seconds all cores spent on anything but idle and I/O wait since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    # already counted in user, so only the first eight columns are summed.
    idle_ticks = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle_ticks) / CLOCK_TICKS_PER_S
