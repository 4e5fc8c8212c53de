"""The load benchmark harness runs end to end: ``benchmarks/run_all.py --smoke``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_ALL = REPO_ROOT / "benchmarks" / "run_all.py"
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
