"""A thread that owns the write connection of a SQLite file and commits jobs in groups.

Callers on the event loop submit jobs: functions of the connection. The thread takes
every job waiting at that moment and runs them in one transaction, each inside its own
savepoint, so many concurrent callers share one commit (and one fsync). A job that
raises is rolled back alone, and only its caller sees the error. A failed commit fails
every job of the group. Results reach the callers' futures through
``loop.call_soon_threadsafe``, so no SQLite call runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fleetpulse import metrics
from fleetpulse.errors import (
    FleetpulseError,
    QueueError,
    QueueStorageFullError,
    StoreError,
    StoreStorageFullError,
)
from fleetpulse.store._sqlite_connect import is_disk_full, translate_error

log = logging.getLogger(__name__)

T = TypeVar("T")

# Caps one transaction so that a flood of small jobs cannot hold back the commit that
# the first of them is waiting for.
MAX_JOBS_PER_COMMIT = 1_000


@dataclass(slots=True)
class _Job:
    run: Callable[[sqlite3.Connection], Any]
    action: str
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # True when run() executes one SQL statement and raises only when it fails.
    one_statement: bool = False


# Put on the job queue by close(): the thread commits what came before it and exits.
_STOP = object()

# The disk-full subtype of each backend error type, raised when SQLite reports SQLITE_FULL.
_STORAGE_FULL_TYPES: dict[type[FleetpulseError], type[FleetpulseError]] = {
    QueueError: QueueStorageFullError,
    StoreError: StoreStorageFullError,
}


class SqliteWriter:
    """The one writing thread of a SQLite file.

    ``connect`` opens the connection inside the thread. Errors reach callers as
    ``error_type`` (QueueError or StoreError) with the sqlite3 error as their cause.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        connect: Callable[[], sqlite3.Connection],
        error_type: type[FleetpulseError],
    ) -> None:
        self._name = name
        self._path = path
        self._connect = connect
        self._error_type = error_type
        self._jobs: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        # Guards _closing and _failure together with putting a job, so that no job can
        # be queued after the thread has drained the queue for the last time.
        self._lock = threading.Lock()
        self._closing = False
        self._failure: BaseException | None = None
        # Commits failed on a full disk since the last successful one. Only the thread
        # reads and writes it. While it is above zero, the repeats are logged at debug.
        self._full_commits = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread, which opens the connection before it runs the first job."""
        self._thread.start()

    async def submit(self, run: Callable[[sqlite3.Connection], T], action: str) -> T:
        """Run ``run(connection)`` in the next group transaction and return its result
        once committed.

        ``action`` names the operation in error messages ("publish", "store write").
        Cancelling the caller does not withdraw the job: it may still commit.
        """
        # The shield keeps a cancelled caller from cancelling the future, so done
        # callbacks that callers attach still see the real outcome.
        return await asyncio.shield(self.enqueue(run, action))

    def enqueue(
        self,
        run: Callable[[sqlite3.Connection], T],
        action: str,
        *,
        one_statement: bool = False,
    ) -> asyncio.Future[T]:
        """Queue ``run(connection)`` for the next group transaction and return its future.

        The job is queued before this returns, so a close() called afterwards still
        commits it. The future gets the result once committed, or the error. Pass
        ``one_statement=True`` only when ``run`` executes one SQL statement and raises
        only when that statement fails. The job then runs without a savepoint of its own.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(_retrieve_exception)
        with self._lock:
            if self._failure is not None:
                raise self._stopped_error(action) from self._failure
            if self._closing:
                raise self._error_type(f"{action} failed: {self._path} is closed")
            self._jobs.put(_Job(run, action, future, loop, one_statement))
        return future

    async def close(self) -> None:
        """Commit the jobs already submitted, then stop the thread. Safe to call twice."""
        with self._lock:
            already_closing = self._closing
            self._closing = True
            if not already_closing:
                self._jobs.put(_STOP)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def _stopped_error(self, action: str) -> FleetpulseError:
        return self._error_type(
            f"{action} failed: the writer of {self._path} stopped after an error; restart"
        )

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as exc:
            log.error("writer could not open path=%s: %s", self._path, exc)
            self._fail_remaining(exc)
            return

        log.info("writer started thread=%s path=%s", self._name, self._path)
        try:
            self._serve(connection)
        except BaseException as exc:
            # Not expected: _commit_group handles SQLite errors. Fail the waiting
            # callers instead of leaving them to wait forever.
            log.exception("writer crashed thread=%s path=%s", self._name, self._path)
            self._fail_remaining(exc)
        finally:
            connection.close()
            if self._full_commits:
                metrics.DATABASE_FULL.remove(str(self._path))
        log.info("writer stopped thread=%s path=%s", self._name, self._path)

    def _serve(self, connection: sqlite3.Connection) -> None:
        while True:
            jobs: list[_Job] = []
            stop = False
            item = self._jobs.get()
            while True:
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, _Job)
                jobs.append(item)
                if len(jobs) >= MAX_JOBS_PER_COMMIT:
                    break
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break

            if jobs:
                self._commit_group(connection, jobs)
            if stop:
                return

    def _commit_group(self, connection: sqlite3.Connection, jobs: list[_Job]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for job in jobs:
                outcomes.append(self._run_job(connection, job))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            self._log_commit_failure(exc, jobs)
            _rollback_quietly(connection, self._path)
            for job in jobs:
                _settle(job, None, self._translate(exc, job.action))
            return

        if self._full_commits:
            log.info(
                "commits resume path=%s after %d failed on a full disk",
                self._path,
                self._full_commits,
            )
            self._full_commits = 0
            metrics.DATABASE_FULL.labels(str(self._path)).set(0)
        for job, (result, job_error) in zip(jobs, outcomes, strict=True):
            _settle(job, result, job_error)

    def _log_commit_failure(self, exc: sqlite3.Error, jobs: list[_Job]) -> None:
        actions = sorted({job.action for job in jobs})
        if not is_disk_full(exc):
            log.error(
                "commit failed path=%s jobs=%d actions=%s: %s", self._path, len(jobs), actions, exc
            )
            return
        # Every commit fails until space is freed, so only the first one is an error.
        self._full_commits += 1
        if self._full_commits == 1:
            metrics.DATABASE_FULL.labels(str(self._path)).set(1)
            log.error(
                "commit failed, disk full path=%s jobs=%d actions=%s: %s; every write fails "
                "until disk space is freed",
                self._path,
                len(jobs),
                actions,
                exc,
            )
        else:
            log.debug(
                "commit failed, disk still full path=%s failed_commits=%d actions=%s",
                self._path,
                self._full_commits,
                actions,
            )

    def _translate(self, exc: sqlite3.Error, action: str) -> FleetpulseError:
        """Build the error for a failed SQLite call, the disk-full subtype on SQLITE_FULL."""
        error: FleetpulseError = translate_error(exc, self._error_type, action, self._path)
        full_type = _STORAGE_FULL_TYPES.get(self._error_type)
        if full_type is not None and is_disk_full(exc):
            error = full_type(str(error))
            error.__cause__ = exc
        return error

    def _run_job(
        self, connection: sqlite3.Connection, job: _Job
    ) -> tuple[Any, BaseException | None]:
        if job.one_statement:
            # SQLite undoes a failed statement and keeps the transaction, so a job of one
            # statement needs no savepoint. That saves two statements and two GIL
            # round trips per publish.
            try:
                return job.run(connection), None
            except Exception as exc:
                self._log_job_failure(exc, job)
                if isinstance(exc, sqlite3.Error) and not connection.in_transaction:
                    raise
                if isinstance(exc, sqlite3.Error):
                    return None, self._translate(exc, job.action)
                return None, exc

        connection.execute("SAVEPOINT job")
        try:
            result = job.run(connection)
        except Exception as exc:
            self._log_job_failure(exc, job)
            if isinstance(exc, sqlite3.Error) and not connection.in_transaction:
                # SQLite rolled back the whole transaction, as it does on some I/O and
                # full-disk errors, so the jobs before this one are lost too.
                raise
            connection.execute("ROLLBACK TO job")
            connection.execute("RELEASE job")
            if isinstance(exc, sqlite3.Error):
                return None, self._translate(exc, job.action)
            return None, exc
        connection.execute("RELEASE job")
        return result, None

    def _log_job_failure(self, exc: Exception, job: _Job) -> None:
        if isinstance(exc, sqlite3.Error) and is_disk_full(exc):
            self._log_commit_failure(exc, [job])
        else:
            log.warning("job failed path=%s action=%s: %s", self._path, job.action, exc)

    def _fail_remaining(self, exc: BaseException) -> None:
        with self._lock:
            self._failure = exc
            while True:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    return
                if isinstance(item, _Job):
                    error = self._stopped_error(item.action)
                    error.__cause__ = exc
                    _settle(item, None, error)


def _rollback_quietly(connection: sqlite3.Connection, path: Path) -> None:
    if not connection.in_transaction:
        return
    try:
        connection.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.error("rollback failed path=%s: %s", path, exc)


def _settle(job: _Job, result: Any, error: BaseException | None) -> None:
    try:
        job.loop.call_soon_threadsafe(_set_outcome, job.future, result, error)
    except RuntimeError:
        # The caller's event loop is closed, so no caller can receive the outcome.
        log.debug("outcome dropped action=%s: event loop closed", job.action)


def _set_outcome(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    # Marks the exception as retrieved, so a caller cancelled while its job was pending
    # does not leave a "Future exception was never retrieved" warning behind.
    if not future.cancelled():
        future.exception()
