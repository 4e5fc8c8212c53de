"""The benchmark harnesses run end to end: ``run_all.py --smoke`` and ``distributed.py --smoke``,
and the /proc readings that count a server's child processes in its CPU and memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.nats_server import require_nats_server
from tests.postgres_server import find_postgres_bin

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
RUN_ALL = BENCHMARKS / "run_all.py"
DISTRIBUTED = BENCHMARKS / "distributed.py"
# Three rows of 2 s, plus PostgreSQL, nats-server and eight fleetpulse processes starting.
DISTRIBUTED_SMOKE_TIMEOUT_S = 180
# The whole smoke suite takes about a minute on a 2-core machine; a loaded CI machine
# gets three times that before the test gives up.
SMOKE_TIMEOUT_S = 180
SUITE_PARTS = ["http", "stages", "ceilings", "memory", "teltonika", "mqtt"]
STAGES = ["decode", "validate", "enqueue", "fetch", "process", "store", "serial", "overlap"]
# A child that uses this much CPU time, then sleeps; its parent only sleeps.
CHILD_BUSY_S = 1.0
BUSY_CHILD = f"""
import time
while time.process_time() < {CHILD_BUSY_S}:
    pass
time.sleep(60)
"""
SLEEPING_PARENT = f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", {BUSY_CHILD!r}])
time.sleep(60)
"""

sys.path.insert(0, str(BENCHMARKS))

import run_all  # noqa: E402
import suite_parts  # noqa: E402
from server_child import descendant_pids, tree_cpu_s, tree_peak_rss_mib  # noqa: E402


def test_select_parts_default_leaves_out_distributed() -> None:
    assert run_all.select_parts(None, None, False) == SUITE_PARTS


def test_select_parts_only_skip_and_distributed() -> None:
    assert run_all.select_parts("mqtt,http", None, False) == ["http", "mqtt"]
    assert run_all.select_parts(None, "http,mqtt", False) == [
        "stages", "ceilings", "memory", "teltonika",
    ]
    assert run_all.select_parts(None, None, True) == [*SUITE_PARTS, "distributed"]
    assert run_all.select_parts("distributed", None, False) == ["distributed"]


def test_select_parts_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown part"):
        run_all.select_parts("http,teltonica", None, False)


def test_mqtt_part_skipped_without_mosquitto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suite_parts, "find_mosquitto", lambda: None)
    options = suite_parts.SuiteOptions(smoke=True, duration_s=1.0, folder=tmp_path)

    section = suite_parts.run_mqtt(options)

    assert section.status == "skipped"
    assert "mosquitto" in section.reason


def test_failed_part_keeps_later_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(options: suite_parts.SuiteOptions) -> suite_parts.Section:
        raise RuntimeError("broken on purpose")

    def working(options: suite_parts.SuiteOptions) -> suite_parts.Section:
        return suite_parts.Section("memory", "Memory", "ok", summary=["fine"])

    monkeypatch.setitem(run_all.SCRIPT_PARTS, "stages", broken)
    monkeypatch.setitem(run_all.SCRIPT_PARTS, "memory", working)
    options = suite_parts.SuiteOptions(smoke=True, duration_s=1.0, folder=tmp_path)

    sections = run_all.run_parts(["stages", "memory"], options)

    assert [section.status for section in sections] == ["failed", "ok"]
    assert "broken on purpose" in sections[0].reason
    summary = run_all.summary_lines(sections)
    assert summary[0].startswith("- stages: failed")
    assert "  - fine" in summary


def test_tree_counts_child_processes() -> None:
    parent = subprocess.Popen([sys.executable, "-c", SLEEPING_PARENT])
    try:
        deadline = time.monotonic() + 10
        while len(descendant_pids(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = descendant_pids(parent.pid)
        assert len(members) == 2, members
        assert members[0] == parent.pid

        # Only the child uses CPU, so the tree's CPU reaches CHILD_BUSY_S only if the
        # child is counted. A loaded machine gives the child its CPU time more slowly.
        deadline = time.monotonic() + 30
        while tree_cpu_s(parent.pid) < CHILD_BUSY_S and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tree_cpu_s(parent.pid) >= CHILD_BUSY_S
        assert tree_peak_rss_mib(parent.pid) > 0
    finally:
        for member in reversed(descendant_pids(parent.pid)):
            os.kill(member, 9)
        parent.wait()


def _mosquitto_missing() -> bool:
    return not any(
        Path(folder, "mosquitto").exists()
        for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin"]
    )


@pytest.mark.slow
def test_run_all_smoke(tmp_path: Path) -> None:
    results_path = tmp_path / "results.json"
    report_path = tmp_path / "results.md"
    completed = subprocess.run(
        [sys.executable, str(RUN_ALL), "--smoke", "--json", str(results_path),
         "--markdown", str(report_path)],
        capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    report = json.loads(results_path.read_text())
    sections = {section["part"]: section for section in report["sections"]}
    assert list(sections) == SUITE_PARTS
    for part, section in sections.items():
        if part == "mqtt" and section["status"] == "skipped":
            assert _mosquitto_missing(), section["reason"]
            if os.environ.get("CI"):
                pytest.fail(f"the mqtt part was skipped in CI: {section['reason']}")
            continue
        assert section["status"] == "ok", (part, section["reason"])
        assert section["commands"], part

    for http in sections["http"]["data"]:
        label = http["label"]
        assert http["records_accepted"] > 0, label
        assert http["processed_rps"] > 0, label
        assert http["server_cpu_s"] > 0, label
        assert http["errors"] == [], label
    assert len(sections["http"]["data"]) == 7

    stages = sections["stages"]["data"]
    assert [stage["name"] for stage in stages] == STAGES
    for stage in stages:
        assert stage["wall_s"] > 0, stage["name"]

    ceilings = {pair["name"]: pair for pair in sections["ceilings"]["data"]}
    assert list(ceilings) == ["decode", "store", "requests"]
    for name, pair in ceilings.items():
        assert pair["ceiling_rate"] > 0, name
        assert pair["fleetpulse_rate"] > 0, name

    memory = sections["memory"]["data"]
    assert [row["vehicles"] for row in memory] == [1_000, 10_000]
    assert all(row["state_mib"] > 0 for row in memory)

    teltonika = sections["teltonika"]["data"]
    assert teltonika["acknowledged"] > 0
    assert teltonika["failed_connections"] == 0
    assert teltonika["stored"] >= teltonika["acknowledged"]

    if sections["mqtt"]["status"] == "ok":
        for row in sections["mqtt"]["data"]:
            assert row["accepted_rps"] > 0, row["label"]
            assert row["processed_rps"] > 0, row["label"]
            assert row["records_not_accepted"] == 0, row["label"]
            assert row["errors"] == [], row["label"]

    markdown = report_path.read_text()
    for section in report["sections"]:
        assert f"## {section['title']}" in markdown, section["part"]
    assert "## Summary" in markdown


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
