"""The server under test: ``fleetpulse run`` in a child process, and what it costs.

CPU time and peak RSS come from ``/proc``, so this module runs on Linux only. Both count
the server's own child processes too (such as a processor that ``fleetpulse run`` starts
in a child process), so that moving work into a child does not hide its cost.
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

    def __init__(
        self, log_level: str = "info", keep_data: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.log_level = log_level
        self.keep_data = keep_data
        # Extra FLEETPULSE_* variables for the child, such as [mqtt] settings.
        self.env = env or {}
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
                start_new_session=True, env={**os.environ, **self.env},
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
        # Read before stop(), which deletes the data folder and the log in it.
        log_tail = self._log_tail()
        self.stop()
        raise RuntimeError(
            f"the server child did not print its URL within {START_TIMEOUT_S} s; "
            f"its log ends with:\n{log_tail}"
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
        """Return the CPU seconds of the child and its descendants, from /proc."""
        return tree_cpu_s(self.pid)

    def peak_rss_mib(self) -> float:
        """Return the summed peak RSS in MiB of the child and its descendants."""
        return tree_peak_rss_mib(self.pid)

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


def descendant_pids(pid: int) -> list[int]:
    """Return ``pid`` and every live process below it, parents before their children.

    Reads ``/proc/<pid>/task/<tid>/children`` (Linux 3.5 or newer). A process that exits
    while the tree is read is left out.
    """
    found = [pid]
    index = 0
    while index < len(found):
        parent = found[index]
        index += 1
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children if int(child) not in found)
    return found


def process_cpu_s(pid: int) -> float:
    """Return the CPU seconds of one process, including its reaped children, from /proc.

    The sum is user + system time of all threads (utime, stime) plus that of the
    children it has waited for (cutime, cstime). Returns 0.0 for a process that has exited.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name in brackets may contain spaces, so split after its ")".
    fields = stat.rpartition(")")[2].split()
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / CLOCK_TICKS_PER_S


def tree_cpu_s(pid: int) -> float:
    """Return the CPU seconds of ``pid`` and all its live descendants.

    A descendant that exited and was reaped is counted in its parent's cutime and cstime,
    so each process counts once. NOTE: a descendant that exits between two readings
    without being reaped by a process of the tree drops out of the second sum.
    """
    return sum(process_cpu_s(member) for member in descendant_pids(pid))


def tree_peak_rss_mib(pid: int) -> float:
    """Return the sum of the peak resident set sizes (VmHWM) of ``pid`` and its descendants.

    Each process reaches its peak at its own time, so the sum is an upper bound of the
    tree's peak. Pages shared between processes count once per process.
    """
    total_kib = 0
    for member in descendant_pids(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kib += int(line.split()[1])
                break
    return total_kib / 1024
