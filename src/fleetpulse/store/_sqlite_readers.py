"""A small pool of reading threads, each with its own read-only SQLite connection."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from fleetpulse.errors import FleetpulseError
from fleetpulse.store._sqlite_connect import connect_reader, translate_error

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReaderPool:
    """Runs read functions on ``workers`` threads, off the event loop.

    Each thread opens its own connection on first use, because a sqlite3 connection
    must not be used by two threads at once. Errors reach callers as ``error_type``.
    """

    def __init__(
        self, name: str, path: Path, workers: int, error_type: type[FleetpulseError]
    ) -> None:
        self._path = path
        self._error_type = error_type
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False

    async def run(self, read: Callable[[sqlite3.Connection], T], action: str) -> T:
        """Return ``read(connection)`` computed on a reading thread.

        ``action`` names the operation in error messages ("fetch", "positions query").
        """
        if self._closed:
            raise self._error_type(f"{action} failed: {self._path} is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, read)
        except sqlite3.Error as exc:
            log.warning("read failed path=%s action=%s: %s", self._path, action, exc)
            raise translate_error(exc, self._error_type, action, self._path) from exc
        except RuntimeError as exc:
            # run_in_executor raises RuntimeError once the executor is shut down.
            if not self._closed:
                raise
            raise self._error_type(f"{action} failed: {self._path} is closed") from exc

    async def close(self) -> None:
        """Wait for running reads, then close every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def _call(self, read: Callable[[sqlite3.Connection], T]) -> T:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = connect_reader(self._path)
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return read(connection)
