"""``fleetpulse evaluate`` on a small fleet: every scenario runs and meets every floor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleetpulse.evaluate import SCENARIOS

pytestmark = pytest.mark.slow

# Large enough that several event types reach the floors' minimum of truth entries.
VEHICLES = 10
DURATION_S = 1800


def test_evaluate_all_scenarios_meet_floors(tmp_path: Path) -> None:
    report = tmp_path / "evaluation.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetpulse.cli.main",
            "evaluate",
            "--vehicles",
            str(VEHICLES),
            "--duration",
            str(DURATION_S),
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(report.read_text())
    assert document["failures"] == []
    assert [s["name"] for s in document["scenarios"]] == list(SCENARIOS)
    for scenario in document["scenarios"]:
        floored = [s for s in scenario["events"] if s["truth"] >= document["floors"]["min_truth"]]
        assert floored, f"{scenario['name']}: no event type reached the floors' minimum"
        assert scenario["trips"]["compared"] > 0
    assert "all floors met" in done.stdout


def test_evaluate_unknown_scenario_rejected() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fleetpulse.cli.main", "evaluate", "--scenario", "rain"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "invalid choice: 'rain'" in done.stderr
