"""A Mosquitto broker for tests: its own process on a free loopback port, stopped by PID.

If the ``mosquitto`` binary is missing, tests that use the broker fail when the
environment variable ``CI`` is set and are skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

# Mosquitto starts in well under a second; 10 s allows for a loaded CI machine.
START_TIMEOUT_S = 10.0
PUBLISH_TIMEOUT_S = 10.0


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish one message and wait for the broker's acknowledgement."""
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        client.connect(self.host, self.port)
        client.loop_start()
        try:
            info = client.publish(topic, payload, qos=qos)
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
            assert info.is_published(), f"publish to {topic} not acknowledged"
        finally:
            client.disconnect()
            client.loop_stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_accepting(host: str, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with status {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not accept connections on port {port} in time")


@pytest.fixture(name="broker")
def broker_fixture(tmp_path: Path) -> Iterator[Broker]:
    """Start mosquitto with anonymous access and no persistence; stop it by PID afterwards."""
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        message = "mosquitto is not installed (apt-get install mosquitto)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    port = _free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest stderr\nlog_type error\nlog_type warning\n"
    )
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_accepting("127.0.0.1", port, process)
        yield Broker("127.0.0.1", port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
