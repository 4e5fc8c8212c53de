"""The data folder lock: one fleetpulse process per folder of queue and store files.

Two processes on one embedded queue would each deliver the same records and keep their
own queue depth, so the second one must not start.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from fleetpulse.errors import ConfigError

log = logging.getLogger(__name__)

LOCK_FILE = "fleetpulse.lock"


def create_data_dir(data_dir: str | Path) -> Path:
    """Create the data folder and its parents if missing; return it.

    Raises ConfigError naming the path when it, or a parent, exists as a file, or when
    the process may not create it.
    """
    path = Path(data_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ConfigError(
            f"data folder {path} exists as a file, not a folder; pass a folder path as "
            "--data-dir ([server] data_dir) or move the file away"
        ) from exc
    except NotADirectoryError as exc:
        raise ConfigError(
            f"data folder {path} cannot be created, because a part of the path is a file; "
            "pass another --data-dir ([server] data_dir)"
        ) from exc
    except PermissionError as exc:
        raise ConfigError(
            f"data folder {path} cannot be created: permission denied; pass a folder this "
            "user may write as --data-dir ([server] data_dir)"
        ) from exc
    return path


class DataDirLock:
    """An exclusive advisory lock on ``data_dir/fleetpulse.lock``, released on close.

    The operating system drops the lock when the process dies, so a crash leaves no
    stale lock behind.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock. Raises ConfigError naming the holder's pid if it is taken."""
        create_data_dir(self.path.parent)
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ConfigError(
                f"data folder {self.path.parent} is in use by another fleetpulse process "
                f"(pid {holder}); stop that process or pass another --data-dir"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        log.debug("data folder locked path=%s", self.path)

    def release(self) -> None:
        """Drop the lock. Safe to call twice."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
