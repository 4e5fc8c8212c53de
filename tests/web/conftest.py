"""A ``fleetpulse run`` child with a simulated fleet, and headless Chromium through Playwright.

Playwright drives Debian's Chromium (``apt-get install chromium``), never a browser it
downloads itself. Without ``/usr/bin/chromium`` or the ``playwright`` package the browser
tests skip with the reason, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
URL_PATTERN = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
SIMULATED_VEHICLES = 6
CONFIG_TOML = """
[[geofences]]
id = "depot"
name = "Depot"
lat = 48.137
lon = 11.575
radius_m = 400.0
"""


def browser_missing_reason() -> str | None:
    """Return why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing; install it with `apt-get install chromium`"
    return None


def require_browser() -> None:
    """Skip the calling test when no browser is available, or fail under CI."""
    reason = browser_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run under CI: {reason}")
    pytest.skip(reason)


@dataclass
class ServerChild:
    """A ``fleetpulse run`` child process and the simulator driving it."""

    url: str
    server: subprocess.Popen[str]
    simulator: subprocess.Popen[bytes] | None = None

    def post(self, records: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(self.url + "/v1/telemetry", json=records, timeout=10)


def start_server(data_dir: Path, log_path: Path) -> tuple[str, subprocess.Popen[str]]:
    """Start ``fleetpulse run`` on a free loopback port and return its URL and process."""
    config = data_dir.parent / "fleetpulse.toml"
    config.write_text(CONFIG_TOML, encoding="utf-8")
    with open(log_path, "a", encoding="utf-8") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetpulse.cli.main", "run", "--config", str(config),
             "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=log_file, text=True,
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = URL_PATTERN.search(line)
        if match:
            return match.group(1), proc
    stop_process(proc)
    raise RuntimeError(f"fleetpulse run did not start; see {log_path}")


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Stop a child with SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def fleet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerChild]:
    """A server with one geofence, fed by a simulated fleet in real time."""
    require_browser()
    root = tmp_path_factory.mktemp("dashboard")
    url, server = start_server(root / "data", root / "server.log")
    child = ServerChild(url=url, server=server)
    try:
        child.simulator = subprocess.Popen(
            [sys.executable, "-m", "fleetpulse.cli.main", "simulate", "--url", url,
             "--vehicles", str(SIMULATED_VEHICLES), "--rate", "1", "--speed", "1",
             "--duration", "900", "--bad-share", "0", "--truth", str(root / "truth.jsonl")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        yield child
    finally:
        if child.simulator is not None:
            stop_process(child.simulator)
        stop_process(server)


@pytest.fixture(scope="module")
def browser(fleet_server: ServerChild) -> Iterator[Any]:
    """A headless Debian Chromium, shared by the tests of one module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
