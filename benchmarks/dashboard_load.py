"""Load the dashboard with a large simulated fleet and measure the browser's side.

Starts ``fleetpulse run`` on a free 127.0.0.1 port (or uses ``--url``), drives it with
``fleetpulse simulate --vehicles 2000 --rate 1 --speed 1``, opens the dashboard in Debian's
headless Chromium (``/usr/bin/chromium``) through Playwright, and for ``--seconds`` records:

- frame time: the deltas between ``requestAnimationFrame`` callbacks (p50, p95, max), in ms;
- live traffic: WebSocket frames and bytes received per second, and, while the page polls
  instead, the HTTP responses and bytes of the API it polls.

Every child process is stopped by PID at the end. Run from the repository root:

    .venv/bin/python benchmarks/dashboard_load.py --vehicles 2000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
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
# Records every requestAnimationFrame delta from the first frame on.
FRAME_RECORDER_JS = """
window.__frameDeltasMs = [];
(() => {
  let last = null;
  const tick = (now) => {
    if (last !== null) window.__frameDeltasMs.push(now - last);
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile of ``values`` (share from 0 to 1)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def start_server(data_dir: Path) -> tuple[str, subprocess.Popen[str]]:
    """Start ``fleetpulse run`` on a free loopback port and return its URL and process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse.cli.main", "run", "--host", "127.0.0.1",
         "--port", "0", "--data-dir", str(data_dir), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
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
    stop(proc)
    raise SystemExit("fleetpulse run did not print its address; run it by hand to see why")


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a child by PID: SIGTERM, then SIGKILL after STOP_TIMEOUT_S."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


class TrafficCounter:
    """Counts what the page receives: WebSocket frames, and API responses while it polls."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.counting = False
        self.ws_frames = 0
        self.ws_bytes = 0
        self.http_responses = 0
        self.http_bytes = 0

    def on_websocket(self, socket: Any) -> None:
        socket.on("framereceived", self.on_frame)

    def on_frame(self, payload: str | bytes) -> None:
        if self.counting:
            self.ws_frames += 1
            self.ws_bytes += len(payload.encode() if isinstance(payload, str) else payload)

    def on_response(self, response: Any) -> None:
        if self.counting and response.url.startswith(self.base_url + "/v1/"):
            self.http_responses += 1
            self.http_bytes += int(response.headers.get("content-length", "0"))


def measure(url: str, seconds: float, vehicles: int, warmup_s: float) -> dict[str, Any]:
    """Open the dashboard, wait for the fleet to appear, then record for ``seconds``."""
    from playwright.sync_api import sync_playwright

    counter = TrafficCounter(url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("websocket", counter.on_websocket)
            page.on("response", counter.on_response)
            page.add_init_script(FRAME_RECORDER_JS)
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            deadline = time.monotonic() + warmup_s
            while time.monotonic() < deadline:
                if page.evaluate("window.fleetpulse.fleet.vehicles.size") >= vehicles:
                    break
                page.wait_for_timeout(500)
            page.evaluate("window.__frameDeltasMs = []")
            counter.counting = True
            started_s = time.monotonic()
            page.wait_for_timeout(seconds * 1000)
            elapsed_s = time.monotonic() - started_s
            counter.counting = False
            deltas: list[float] = page.evaluate("window.__frameDeltasMs")
            state = page.evaluate(
                "({vehicles: window.fleetpulse.fleet.vehicles.size,"
                " markers: window.fleetpulse.fleetMap.markers.size,"
                " mode: document.getElementById('connection').dataset.state,"
                " skipped: window.fleetpulse.live.stats.skippedVehicleFrames})"
            )
        finally:
            browser.close()
    if not deltas:
        raise SystemExit("the page drew no frame while measuring")
    return {
        "seconds": round(elapsed_s, 1),
        "vehicles_in_page": state["vehicles"],
        "markers": state["markers"],
        "mode": state["mode"],
        "frames_drawn": len(deltas),
        "frame_ms_p50": round(percentile(deltas, 0.50), 1),
        "frame_ms_p95": round(percentile(deltas, 0.95), 1),
        "frame_ms_max": round(max(deltas), 1),
        "ws_frames_per_s": round(counter.ws_frames / elapsed_s, 2),
        "ws_bytes_per_s": round(counter.ws_bytes / elapsed_s),
        "http_responses_per_s": round(counter.http_responses / elapsed_s, 2),
        "http_bytes_per_s": round(counter.http_bytes / elapsed_s),
        "lagging_skipped_vehicle_frames": state["skipped"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--vehicles", type=int, default=2000, help="simulated vehicles (default 2000)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds (default 30)")
    parser.add_argument(
        "--warmup-s", type=float, default=60.0,
        help="maximum seconds to wait for every vehicle to reach the page (default 60)",
    )
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    children: list[subprocess.Popen[Any]] = []
    with tempfile.TemporaryDirectory(prefix="fleetpulse-dashboard-") as folder:
        try:
            url = args.url
            if url is None:
                url, server = start_server(Path(folder) / "data")
                children.append(server)
            children.append(subprocess.Popen(
                [sys.executable, "-m", "fleetpulse.cli.main", "simulate", "--url", url,
                 "--vehicles", str(args.vehicles), "--rate", "1", "--speed", "1",
                 "--duration", str(args.warmup_s + args.seconds + 120),
                 "--truth", str(Path(folder) / "truth.jsonl")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
            results = measure(url, args.seconds, args.vehicles, args.warmup_s)
        finally:
            for child in reversed(children):
                stop(child)
    for name, value in results.items():
        print(f"{name:32} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
