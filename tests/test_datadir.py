"""One fleetpulse process per data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetpulse.datadir import DataDirLock
from fleetpulse.errors import ConfigError


def test_datadir_second_lock_refused(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(ConfigError, match="in use by another fleetpulse process"):
        DataDirLock(tmp_path).acquire()
    first.release()


def test_datadir_lock_free_after_release(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    first.release()
    second = DataDirLock(tmp_path)
    second.acquire()
    second.release()


def test_datadir_lock_names_holder_pid(tmp_path: Path) -> None:
    import os

    holder = DataDirLock(tmp_path)
    holder.acquire()
    with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
        DataDirLock(tmp_path).acquire()
    holder.release()
