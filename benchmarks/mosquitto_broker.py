"""A Mosquitto broker for the MQTT benchmark: its own process on a free loopback port.

It is started and stopped by PID, like the broker of the test suite. Linux only.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

# Mosquitto starts in well under a second; 10 s allows for a loaded machine.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# Messages the broker queues per session beyond those in flight. Mosquitto's default of
# 1000 would drop messages whenever the publishers run ahead of fleetpulse, so the
# benchmark raises it above its own window of unaccepted records.
MAX_QUEUED_MESSAGES = 1_000_000


def find_mosquitto() -> str | None:
    """Return the path of the ``mosquitto`` binary, or None if it is not installed."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MosquittoBroker:
    """Mosquitto on 127.0.0.1 with anonymous access and no persistence.

    Use as a context manager: leaving the block stops the broker by PID (SIGTERM, then
    SIGKILL) and deletes its folder.
    """

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="fleetpulse-mosquitto-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the broker's process id. Raises RuntimeError before ``start``."""
        if self.process is None:
            raise RuntimeError("mosquitto not started")
        return self.process.pid

    def __enter__(self) -> MosquittoBroker:
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
        """Start the broker and wait until it accepts connections."""
        config = self.folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n"
            f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
            f"log_dest file {self.folder / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\n"
        )
        self.process = subprocess.Popen(
            [self.binary, "-c", str(config)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        log.info("mosquitto started pid=%d port=%d", self.process.pid, self.port)
        deadline_s = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline_s:
            if self.process.poll() is not None:
                log_tail = self._log_tail()
                self.stop()
                raise RuntimeError(
                    f"mosquitto exited with status {self.process.returncode}; its log "
                    f"ends with:\n{log_tail}"
                )
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port} in "
                           f"{START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        """Stop the broker by PID and delete its folder. Safe to repeat."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("mosquitto pid=%d ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()
            log.info("mosquitto stopped pid=%d exit=%s", process.pid, process.returncode)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _log_tail(self) -> str:
        path = self.folder / "mosquitto.log"
        try:
            return path.read_text()[-2000:]
        except OSError as exc:
            return f"(cannot read {path}: {exc})"
