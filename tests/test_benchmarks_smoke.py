"""The load benchmark harnesses run end to end: ``run_all.py`` and ``distributed.py --smoke``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nats_server import require_nats_server
from tests.postgres_server import find_postgres_bin

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_ALL = REPO_ROOT / "benchmarks" / "run_all.py"
DISTRIBUTED = REPO_ROOT / "benchmarks" / "distributed.py"
# Three rows of 2 s, plus PostgreSQL, nats-server and eight fleetpulse processes starting.
DISTRIBUTED_SMOKE_TIMEOUT_S = 180
# Seven scenarios of about 2 s each, plus server start-up and request building.
SMOKE_TIMEOUT_S = 120


@pytest.mark.slow
def test_run_all_smoke(tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    table_path = tmp_path / "results.md"
    completed = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--json", str(results_path),
         "--markdown", str(table_path)],
        capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    reports = json.loads(results_path.read_text())
    assert len(reports) == 7
    for report in reports:
        label = report["label"]
        assert report["records_accepted"] > 0, label
        assert report["processed_rps"] > 0, label
        assert report["server_cpu_s"] > 0, label
        assert report["errors"] == [], label
    rows = [line for line in table_path.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(reports)


@pytest.mark.slow
def test_distributed_smoke(tmp_path: Path) -> None:
    require_nats_server()
    if find_postgres_bin() is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    results_path = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(DISTRIBUTED), "--smoke", "--json", str(results_path)],
        capture_output=True, text=True, timeout=DISTRIBUTED_SMOKE_TIMEOUT_S, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    reports = json.loads(results_path.read_text())
    labels = [report["label"] for report in reports]
    assert labels == ["embedded (run)", "distributed, 1 processor", "distributed, 2 processors"]
    for report in reports:
        label = report["label"]
        assert report["records_accepted"] > 0, label
        assert report["processed_rps"] > 0, label
        assert report["server_cpu_s"] > 0, label
        assert report["errors"] == [], label
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(reports)
