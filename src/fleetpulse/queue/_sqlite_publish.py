"""Publish groups of the embedded queue: concurrent publishes share one row and one job.

At one record per request, a row, a writer job and a thread hand-off per publish cost
the event loop more than the request's own work. The first publish that finds no open
group starts one and queues its writer job at once. Publishes that arrive before the
writer thread runs that job add their records to the same group. When the job runs, it
seals the group, encodes every record in call order as one msgpack row and inserts it,
so all of the group's callers share one commit and its outcome.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence

import msgspec

from fleetpulse.model.record import Record

_INSERT = "INSERT INTO batches (record_count, payload) VALUES (?, ?)"


class PublishGroup:
    """The records of the publishes that become one row, in call order.

    The event loop adds records with ``add`` until the writer thread seals the group in
    ``insert``. ``lock`` is shared by the groups of one queue and orders the two. Only
    the event loop touches ``waiters``.
    """

    __slots__ = ("_lock", "count", "records", "sealed", "waiters")

    def __init__(self, lock: threading.Lock, records: Sequence[Record]) -> None:
        self._lock = lock
        self.records: list[Record] = list(records)
        self.count = len(self.records)
        self.sealed = False
        # One future per publish, set on the event loop once the row is committed.
        self.waiters: list[asyncio.Future[None]] = []

    def add(self, records: Sequence[Record], max_records: int) -> bool:
        """Append records to the group, or return False when it is sealed or would pass
        ``max_records``."""
        with self._lock:
            if self.sealed or self.count + len(records) > max_records:
                return False
            self.records.extend(records)
            self.count += len(records)
            return True

    def seal(self) -> int:
        """Stop the group taking records and return its final record count."""
        with self._lock:
            self.sealed = True
            return self.count

    def wake(self, error: BaseException | None) -> None:
        """Resolve every waiting publish with ``error``, or with success when it is None."""
        for waiter in self.waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def insert(self, connection: sqlite3.Connection) -> int:
        """Seal the group, insert its records as one row and return the record count.

        Runs in the writer thread, as a job of one statement.
        """
        self.seal()
        # One encoder per row, because the event loop thread never touches it.
        payload = msgspec.msgpack.Encoder().encode(self.records)
        connection.execute(_INSERT, (self.count, payload))
        return self.count
