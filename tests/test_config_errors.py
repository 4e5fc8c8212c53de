"""Invalid settings and data folders: each error names the key or path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpulse.cli.main import main
from fleetpulse.config import load_settings
from fleetpulse.datadir import DataDirLock, create_data_dir
from fleetpulse.errors import ConfigError


def test_file_value_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text('[server]\nport = "eighty"\n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})

    message = str(caught.value)
    assert "[server] port" in message
    assert str(config) in message
    assert "default 8080" in message


def test_environment_value_names_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"FLEETPULSE_SERVER_PORT": "abc"})

    message = str(caught.value)
    assert "FLEETPULSE_SERVER_PORT" in message
    assert "[server] port" in message
    assert "default 8080" in message


def test_environment_wins_over_file_in_message(tmp_path: Path) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text("[server]\nport = 8080\n", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={"FLEETPULSE_SERVER_PORT": "abc"})

    assert "FLEETPULSE_SERVER_PORT" in str(caught.value)


def test_override_value_names_option() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={}, overrides={"server": {"port": "x"}})

    assert "command-line option" in str(caught.value)


def test_data_dir_is_file(tmp_path: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("", encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        create_data_dir(file)

    message = str(caught.value)
    assert str(file) in message
    assert "--data-dir" in message


def test_data_dir_under_file(tmp_path: Path) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("", encoding="utf-8")

    with pytest.raises(ConfigError, match="a part of the path is a file"):
        DataDirLock(file / "data").acquire()


def test_run_data_dir_file_exit_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "not-a-folder"
    file.write_text("", encoding="utf-8")

    exit_code = main(["run", "--data-dir", str(file), "--port", "0"])

    captured = capsys.readouterr()
    assert exit_code != 0
    assert "exists as a file" in captured.err
    assert "Errno" not in captured.err
