"""The embedded queue: a SQLite file in WAL mode, ``queue.db`` in ``server.data_dir``.

Publishes that arrive before the writer thread takes their group's job share one row
(``queue._sqlite_publish``): the msgpack encoding of their ``list[Record]`` and its
record count. Row offsets come from an AUTOINCREMENT key, so they increase in commit
order and are never reused, not even after every row has been deleted. The backend
has one partition and one consumer position: ``fetch`` hands out rows in offset
order, which keeps every vehicle's records in publish order. ``ack`` deletes the
acknowledged rows. The consumer position lives in memory only, so after a restart
every row still present (published and not acknowledged) is delivered again.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from fleetpulse.errors import QueueError, QueueFullError, QueueStorageFullError
from fleetpulse.metrics import QUEUE_DEPTH
from fleetpulse.model.record import Record
from fleetpulse.queue._sqlite_publish import PublishGroup
from fleetpulse.queue.base import Delivery, Queue
from fleetpulse.store._sqlite_connect import connect_writer
from fleetpulse.store._sqlite_readers import ReaderPool
from fleetpulse.store._sqlite_writer import SqliteWriter

if TYPE_CHECKING:
    from fleetpulse.config import Settings

log = logging.getLogger(__name__)

QUEUE_FILE = "queue.db"
# PRAGMA user_version of the layout below; a later layout adds a migration step.
SCHEMA_VERSION = 1
# Every delivery of this backend is in partition 0: one consumer reads one ordered log.
PARTITION = 0
# The writer appends rows and deletes them again, touching few pages.
WRITER_CACHE_KIB = 8 * 1024

_SCHEMA = """
CREATE TABLE batches (
    batch_offset INTEGER PRIMARY KEY AUTOINCREMENT,
    record_count INTEGER NOT NULL,
    payload BLOB NOT NULL
)
"""
_SELECT_AFTER = (
    "SELECT batch_offset, record_count, payload FROM batches"
    " WHERE batch_offset > ? ORDER BY batch_offset LIMIT ?"
)
_COUNT_ROWS = "SELECT COUNT(*) FROM batches WHERE batch_offset IN (SELECT value FROM json_each(?))"
_DELETE = (
    "DELETE FROM batches WHERE batch_offset IN (SELECT value FROM json_each(?))"
    " RETURNING record_count"
)


class SqliteQueue(Queue):
    """The embedded, durable, bounded queue (``[queue] backend = "sqlite"``).

    ``publish`` returns after its row is committed, and fsynced when
    ``queue.synchronous`` is "full" (the default). Concurrent publishes share one
    row and one commit. ``queue.capacity_records`` (default 2,000,000) bounds the
    records held.
    """

    def __init__(self, settings: Settings) -> None:
        self._data_dir = Path(settings.server.data_dir)
        self._path = self._data_dir / QUEUE_FILE
        self._synchronous = settings.queue.synchronous
        self._capacity = settings.queue.capacity_records
        self._decoder = msgspec.msgpack.Decoder(list[Record])
        self._depth = 0
        self._last_offset = 0
        self._published = asyncio.Event()
        self._fetch_lock = asyncio.Lock()
        self._writer: SqliteWriter | None = None
        self._readers: ReaderPool | None = None
        self._ack_listener: Callable[[int], None] | None = None
        # The group that publishes join until the writer thread seals it (``publish``).
        self._publish_group: PublishGroup | None = None
        self._publish_lock = threading.Lock()
        # A group takes no more records than the processor fetches in one round, so that
        # only a single large publish makes a row larger than a fetch.
        self._max_group_records = settings.queue.fetch_max_records
        self._closed = False

    async def start(self) -> None:
        """Open or create ``queue.db``. Every unacknowledged row becomes fetchable again."""
        try:
            self._data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error_type = QueueStorageFullError if exc.errno == errno.ENOSPC else QueueError
            raise error_type(f"cannot create data directory {self._data_dir}: {exc}") from exc

        path = self._path
        synchronous = self._synchronous
        writer = SqliteWriter(
            "queue-writer",
            path,
            lambda: connect_writer(path, synchronous, WRITER_CACHE_KIB),
            QueueError,
        )
        writer.start()
        self._writer = writer
        self._depth = await writer.submit(_migrate_and_count, "queue open")
        # One reading thread: fetches are serialized anyway by the consumer position.
        self._readers = ReaderPool("queue-reader", path, 1, QueueError)
        QUEUE_DEPTH.set(self._depth)
        log.info("queue opened path=%s depth=%d synchronous=%s", path, self._depth, synchronous)

    async def close(self) -> None:
        """Commit pending publishes and acks, stop the writer and close the file."""
        if self._closed:
            return
        self._closed = True
        # Wakes a fetch that waits for publishes, so that it returns an empty list.
        self._published.set()
        if self._writer is not None:
            await self._writer.close()
        if self._readers is not None:
            async with self._fetch_lock:
                await self._readers.close()
        log.info("queue closed path=%s depth=%d", self._path, self._depth)

    async def publish(self, records: Sequence[Record]) -> None:
        """Append records to the open publish group and return once its row is committed.

        Publishes that arrive before the writer thread runs the group's job share its
        row, with their records in call order, and its commit: a failed commit fails
        every one of them (``queue._sqlite_publish``). Raises QueueFullError when the
        records would take the queue past its capacity, QueueStorageFullError when the
        disk is full and QueueError when the file cannot be written for another reason.
        """
        count = len(records)
        if count == 0:
            return
        writer = self._require_writer("publish")
        if self._depth + count > self._capacity:
            raise QueueFullError(self._depth, self._capacity)

        group = self._publish_group
        if group is None or not group.add(records, self._max_group_records):
            group = PublishGroup(self._publish_lock, records)
            committed = writer.enqueue(group.insert, "publish", one_statement=True)
            # One callback per group settles the reservations of all its publishes and
            # wakes their callers. A cancelled caller cancels only its own waiter.
            committed.add_done_callback(partial(self._settle_publish_group, group))
            self._publish_group = group
        # Reserved before the commit, so concurrent publishes cannot overshoot capacity.
        self._depth += count
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        group.waiters.append(waiter)
        await waiter

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivery]:
        """Return the rows after the last fetched one, up to about ``max_records`` records.

        Returns at least one row when any is available, even one larger than
        ``max_records``. Each row is one delivery with ``offset`` the row's offset.
        Waits up to ``timeout_s`` seconds for a publish, and returns an empty list on
        timeout or once the queue is closed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            deliveries = await self._fetch_available(max_records)
            if deliveries or self._closed:
                return deliveries

            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                return []
            # A committed publish or close() sets the event. Otherwise the timeout ends the wait.
            try:
                await asyncio.wait_for(self._published.wait(), remaining_s)
            except TimeoutError:
                return []

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete the rows of the deliveries and return once the deletion is committed.

        Acknowledging a delivery twice is harmless. Raises QueueError on failure, in
        which case the rows are delivered again after a restart.
        """
        if not deliveries:
            return
        writer = self._require_writer("ack")
        offsets = msgspec.json.encode([delivery.offset for delivery in deliveries])
        committed = writer.enqueue(partial(_delete_batches, offsets), "ack", one_statement=True)
        committed.add_done_callback(self._settle_ack)
        await asyncio.shield(committed)

    def depth(self) -> int:
        """Return the number of records published and not yet acknowledged."""
        return self._depth

    # The methods below let a consumer in another process share this file: the publishing
    # process wakes it and counts its acks (``roles/child.py``).

    def set_ack_listener(self, listener: Callable[[int], None] | None) -> None:
        """Call ``listener`` on the event loop with the record count of each committed ack."""
        self._ack_listener = listener

    def add_external_acks(self, records: int) -> None:
        """Subtract records that a consumer in another process acknowledged from the depth."""
        self._depth = max(0, self._depth - records)
        QUEUE_DEPTH.set(self._depth)

    def notify_published(self) -> None:
        """Wake a waiting fetch because another process committed a publish."""
        self._published.set()

    async def wait_published(self) -> bool:
        """Wait until a publish of this process commits or the queue closes, then reset.

        Returns False once the queue is closed. Only a process that never fetches may
        call it, because fetch resets the same signal.
        """
        await self._published.wait()
        self._published.clear()
        return not self._closed

    async def count_rows(self, offsets: Sequence[int]) -> int:
        """Return how many of the rows at ``offsets`` are still in the file.

        An offset is never reused, so a row that is gone was acknowledged.
        """
        readers = self._readers
        if readers is None or self._closed:
            raise QueueError(f"row count failed: queue {self._path} is not open")
        return await readers.run(partial(_count_rows, msgspec.json.encode(list(offsets))), "count")

    async def recount_depth(self) -> int:
        """Set the depth to the records in the file and return it.

        Only for a process that never publishes, such as the processor child, whose
        depth does not see the publishes of the other process.
        """
        self._depth = await self._require_writer("depth count").submit(
            _count_records, "depth count"
        )
        return self._depth

    def _settle_publish_group(self, group: PublishGroup, committed: asyncio.Future[int]) -> None:
        # A job that never ran (the writer stopped) has not sealed its group, so sealing
        # here makes the count final: a later publish starts a new group.
        count = group.seal()
        if committed.cancelled():
            error: BaseException | None = QueueError(
                f"publish failed: the commit to {self._path} was cancelled; send the records again"
            )
        else:
            error = committed.exception()
        if error is not None:
            self._depth -= count
        else:
            self._published.set()
            QUEUE_DEPTH.set(self._depth)
        group.wake(error)

    def _settle_ack(self, committed: asyncio.Future[int]) -> None:
        if committed.cancelled() or committed.exception() is not None:
            return
        # Counts only the rows this ack deleted, so acknowledging twice is harmless.
        acked = committed.result()
        self._depth -= acked
        QUEUE_DEPTH.set(self._depth)
        if self._ack_listener is not None:
            self._ack_listener(acked)

    async def _fetch_available(self, max_records: int) -> list[Delivery]:
        async with self._fetch_lock:
            readers = self._readers
            if readers is None or self._closed:
                return []
            # Cleared before reading: a publish that commits after this point sets the
            # event again, so the wait in fetch() cannot miss it.
            self._published.clear()
            read = partial(_read_batches, self._last_offset, max_records, self._decoder, self._path)
            deliveries = await readers.run(read, "fetch")
            if deliveries:
                self._last_offset = deliveries[-1].offset
                log.debug("fetched batches=%d last_offset=%d", len(deliveries), self._last_offset)
            return deliveries

    def _require_writer(self, action: str) -> SqliteWriter:
        if self._writer is None or self._closed:
            raise QueueError(f"{action} failed: queue {self._path} is not open")
        return self._writer


def _migrate_and_count(connection: sqlite3.Connection) -> int:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise QueueError(
            f"queue.db has schema version {version}, newer than {SCHEMA_VERSION} "
            "that this fleetpulse reads; upgrade fleetpulse"
        )
    if version < 1:
        connection.execute(_SCHEMA)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return _count_records(connection)


def _count_rows(offsets: bytes, connection: sqlite3.Connection) -> int:
    row = connection.execute(_COUNT_ROWS, (offsets.decode(),)).fetchone()
    return int(row[0])


def _count_records(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT COALESCE(SUM(record_count), 0) FROM batches").fetchone()
    return int(row[0])


def _delete_batches(offsets: bytes, connection: sqlite3.Connection) -> int:
    rows = connection.execute(_DELETE, (offsets.decode(),)).fetchall()
    return sum(row[0] for row in rows)


def _read_batches(
    after_offset: int,
    max_records: int,
    decoder: msgspec.msgpack.Decoder[list[Record]],
    path: Path,
    connection: sqlite3.Connection,
) -> list[Delivery]:
    deliveries: list[Delivery] = []
    total = 0
    # Every row contains at least one record, so max_records rows always suffice.
    cursor = connection.execute(_SELECT_AFTER, (after_offset, max(1, max_records)))
    try:
        for offset, count, payload in cursor:
            try:
                records = decoder.decode(payload)
            except msgspec.DecodeError as exc:
                raise QueueError(
                    f"fetch failed: the batch at offset {offset} in {path} cannot be "
                    f"decoded: {exc}. The file is damaged. Restore it from a backup, or "
                    "move it aside to start with an empty queue"
                ) from exc
            deliveries.append(Delivery(PARTITION, offset, records))
            total += count
            if total >= max_records:
                break
    finally:
        cursor.close()
    return deliveries
