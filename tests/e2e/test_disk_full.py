"""A full disk under data_dir: ingest responds 503 storage_full, keeps running and recovers.

The test mounts a small tmpfs of its own as the server's data folder, fills it with a
file, and checks that no request is acknowledged that the server cannot keep. Deleting
the file frees the space, and the same server accepts and processes records again
without a restart. Mounting needs root (or CAP_SYS_ADMIN): without it the test fails
when the environment variable CI is set and is skipped otherwise.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.serverproc import ServerProcess

pytestmark = pytest.mark.slow

TMPFS_SIZE = "24m"
VEHICLES = 4
BATCH_RECORDS = 200
# Enough requests to fill the SQLite files' free pages once the filler takes the rest.
MAX_REQUESTS_UNTIL_FULL = 400
RECOVERY_TIMEOUT_S = 30.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs at {mount_point} (needs root): {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        unmounted = subprocess.run(["umount", str(mount_point)], check=False)
        if unmounted.returncode != 0:
            # A process that still has a file open there keeps the mount busy; detach it
            # now, and the kernel frees it once that process exits.
            subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def _batch(start_ms: int, batch_no: int) -> list[dict[str, Any]]:
    records = []
    for i in range(BATCH_RECORDS):
        records.append({
            "device_id": f"full-{i % VEHICLES}",
            "ts": start_ms + batch_no * BATCH_RECORDS + i,
            "lat": 48.1 + i * 1e-5,
            "lon": 11.5,
            "speed_kmh": 30.0,
            "ignition": True,
            # Makes every record a few hundred bytes, so the disk fills in few requests.
            "attributes": {"note": "x" * 200},
        })
    return records


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until the file system has no space left; return the bytes."""
    written = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        # Smaller writes after the first ENOSPC take the last free pages.
        for size in (1024 * 1024, 65536, 4096):
            chunk = b"\0" * size
            while True:
                try:
                    count = os.write(descriptor, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
                written += count
                if count < size:
                    break
    finally:
        os.close(descriptor)
    return written


def _acknowledge(acked: set[tuple[str, int]], batch: list[dict[str, Any]]) -> None:
    for record in batch:
        acked.add((str(record["device_id"]), int(record["ts"])))


def test_disk_full_refuses_then_recovers(small_disk: Path) -> None:
    server = ServerProcess(small_disk / "data")
    # The log goes beside the mount point, so that it can tell what happened on a full disk.
    server.log_path = small_disk.parent / "server.log"
    server.start()
    acked: set[tuple[str, int]] = set()
    start_ms = int(time.time() * 1000) - 3_600_000
    batch_no = 0
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            first = _batch(start_ms, batch_no)
            assert client.post("/v1/telemetry", json=first).status_code == 202
            _acknowledge(acked, first)
            server.wait_drained()

            filler = small_disk / "filler"
            assert _fill(filler) > 0

            # Free pages inside the SQLite files can take a few more requests.
            refused: httpx.Response | None = None
            for batch_no in range(1, MAX_REQUESTS_UNTIL_FULL):
                batch = _batch(start_ms, batch_no)
                answer = client.post("/v1/telemetry", json=batch)
                if answer.status_code == 202:
                    _acknowledge(acked, batch)
                    continue
                refused = answer
                break
            assert refused is not None, "the server kept acknowledging records on a full disk"
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "storage_full"
            assert refused.headers["Retry-After"] == "1"

            health = client.get("/healthz")
            assert health.status_code == 503
            assert any("disk full" in problem for problem in health.json()["problems"])
            assert server.metric("fleetpulse_storage_full_total") >= 1
            assert server.proc is not None and server.proc.poll() is None

            filler.unlink()
            recovered = False
            deadline = time.monotonic() + RECOVERY_TIMEOUT_S
            while time.monotonic() < deadline:
                batch_no += 1
                batch = _batch(start_ms, batch_no)
                answer = client.post("/v1/telemetry", json=batch)
                if answer.status_code == 202:
                    _acknowledge(acked, batch)
                    recovered = True
                    break
                assert answer.json()["error"]["code"] == "storage_full", answer.text
                time.sleep(0.5)
            assert recovered, f"ingest still refuses records {RECOVERY_TIMEOUT_S} s after freeing"

            server.wait_drained(timeout_s=RECOVERY_TIMEOUT_S)
            assert client.get("/healthz").status_code == 200

        stored: set[tuple[str, int]] = set()
        for vehicle in range(VEHICLES):
            device_id = f"full-{vehicle}"
            params: dict[str, Any] = {"from": 0, "to": 2**62, "limit": 10_000}
            while True:
                page = server.get(f"/v1/vehicles/{device_id}/positions", **params)
                stored.update((device_id, p["ts_ms"]) for p in page["positions"])
                if page["next"] is None:
                    break
                params["from"] = page["positions"][-1]["ts_ms"] + 1
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:3]}"
    finally:
        server.stop()
