"""The dashboard against a server with [auth] enabled, in headless Chromium.

The page must ask for a key, keep it for the tab, and then load the fleet and open the
live stream with it. Skips without Chromium or Playwright, and fails under CI.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetpulse.auth.keyfile import create_key
from tests.web.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    START_TIMEOUT_S,
    URL_PATTERN,
    require_browser,
    stop_process,
)

pytestmark = pytest.mark.slow

WAIT_MS = 20_000


@pytest.fixture(scope="module")
def auth_child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A `fleetpulse run` child with auth on; yields its URL, a read key and a device token."""
    require_browser()
    root = tmp_path_factory.mktemp("dashboard-auth")
    data = root / "data"
    _, read = create_key(data / "keys.json", "read", name="dashboard")
    _, device = create_key(data / "keys.json", "device", frozenset({"truck-1"}))
    config = root / "fleetpulse.toml"
    config.write_text("[auth]\nenabled = true\n", encoding="utf-8")
    log_path = root / "server.log"
    with open(log_path, "a", encoding="utf-8") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetpulse.cli.main",
                "run",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--data-dir",
                str(data),
            ],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    try:
        url = _wait_for_url(proc, log_path)
        yield url, read, device
    finally:
        stop_process(proc)


def _wait_for_url(proc: subprocess.Popen[str], log_path: Path) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = URL_PATTERN.search(line)
        if match:
            return match.group(1)
    raise RuntimeError(f"fleetpulse run did not start; see {log_path}")


def test_dashboard_asks_for_key_then_goes_live(auth_child: tuple[str, str, str]) -> None:
    from playwright.sync_api import sync_playwright

    url, read_key, device_token = auth_child
    records = [
        {
            "device_id": "truck-1",
            "ts": int(time.time() * 1000) - 5000,
            "lat": 48.137,
            "lon": 11.575,
            "speed_kmh": 20.0,
        }
    ]
    posted = httpx.post(
        url + "/v1/telemetry",
        json=records,
        timeout=10,
        headers={"Authorization": f"Bearer {device_token}"},
    )
    assert posted.status_code == 202

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page: Any = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#key-dialog[open]", timeout=WAIT_MS)
            page.fill("#key-input", read_key)
            page.click("#key-submit")
            page.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
            page.wait_for_selector("#connection[data-state=live]", timeout=WAIT_MS)
            vehicles = page.evaluate("window.fleetpulse.fleet.vehicles.size")
            stored = page.evaluate("sessionStorage.getItem('fleetpulse.apiKey')")
        finally:
            browser.close()

    assert vehicles >= 1
    assert stored == read_key
