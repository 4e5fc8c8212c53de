"""The ``simulate`` and ``replay`` sub-commands: options, exit codes and summaries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from fleetpulse.cli import replay as replay_command
from fleetpulse.cli import simulate as simulate_command
from tests.sim.conftest import IngestStub

MUNICH_15S = Path(__file__).parents[1] / "data" / "traces" / "barefoot_munich_x0001-015_15s.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleetpulse")
    subparsers = parser.add_subparsers(dest="command")
    simulate_command.add_parser(subparsers)
    replay_command.add_parser(subparsers)
    return parser


def _options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices[command]
            return {option for a in sub._actions for option in a.option_strings} - {"-h", "--help"}
    raise AssertionError(f"no {command} sub-command")


def test_simulate_options_pinned() -> None:
    assert _options(_parser(), "simulate") == {
        "--protocol",
        "--vehicles",
        "--rate",
        "--duration",
        "--url",
        "--seed",
        "--speed",
        "--batch",
        "--bad-share",
        "--duplicate-share",
        "--concurrency",
        "--truth",
        "--json-summary",
    }


def test_replay_options_pinned() -> None:
    assert _options(_parser(), "replay") == {
        "--url",
        "--speed",
        "--keep-times",
        "--device-id",
        "--batch",
        "--concurrency",
        "--json-summary",
    }


def test_simulate_defaults() -> None:
    args = _parser().parse_args(["simulate"])

    assert args.url == "http://127.0.0.1:8080"
    assert args.speed == 1.0
    assert args.batch == 500
    assert args.bad_share == 0.01
    assert args.truth == "sim-truth.jsonl"
    assert args.func is simulate_command.run


@pytest.mark.parametrize("speed", ["max", "0"])
def test_simulate_speed_max(speed: str) -> None:
    args = _parser().parse_args(["simulate", "--speed", speed])

    assert args.speed == float("inf")


def test_simulate_speed_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["simulate", "--speed", "-3"])

    assert exit_info.value.code == 2
    assert "positive number or 'max'" in capsys.readouterr().err


def test_simulate_run_writes_summary(
    ingest_stub: IngestStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary_path = tmp_path / "summary.json"
    args = _parser().parse_args(
        [
            "simulate",
            "--vehicles",
            "3",
            "--duration",
            "120",
            "--speed",
            "max",
            "--url",
            ingest_stub.url,
            "--truth",
            str(tmp_path / "truth.jsonl"),
            "--json-summary",
            str(summary_path),
        ]
    )

    code = args.func(args)

    summary = json.loads(summary_path.read_text())
    output = capsys.readouterr().out
    assert code == 0
    assert summary["records_generated"] == 360
    assert summary["speed"] == "max"
    assert summary["accepted"] == len(ingest_stub.accepted)
    assert "simulated 3 vehicles for 120 s" in output
    assert f"{summary['records_sent']:,} sent" in output


def test_simulate_run_unreachable(
    closed_port_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(
        ["simulate", "--url", closed_port_url, "--truth", str(tmp_path / "t.jsonl")]
    )

    code = args.func(args)

    assert code == simulate_command.EXIT_FAILED
    assert "is `fleetpulse run` started" in capsys.readouterr().err


def test_simulate_run_invalid_vehicles(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["simulate", "--vehicles", "0"])

    code = args.func(args)

    assert code == simulate_command.EXIT_USAGE
    assert "vehicles must be at least 1" in capsys.readouterr().err


def test_replay_run_writes_summary(
    ingest_stub: IngestStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary_path = tmp_path / "summary.json"
    args = _parser().parse_args(
        [
            "replay",
            str(MUNICH_15S),
            "--speed",
            "max",
            "--device-id",
            "munich",
            "--url",
            ingest_stub.url,
            "--json-summary",
            str(summary_path),
        ]
    )

    code = args.func(args)

    summary = json.loads(summary_path.read_text())
    assert code == 0
    assert summary["accepted"] == 80
    assert summary["device_ids"] == ["munich"]
    assert "replayed 1 traces as munich" in capsys.readouterr().out


def test_replay_run_device_id_two_files(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["replay", str(MUNICH_15S), str(MUNICH_15S), "--device-id", "car"])

    code = args.func(args)

    assert code == simulate_command.EXIT_USAGE
    assert "a device id can name one trace" in capsys.readouterr().err


def test_replay_run_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["replay", str(tmp_path / "none.gpx")])

    code = args.func(args)

    assert code == simulate_command.EXIT_FAILED
    assert "file not found" in capsys.readouterr().err
