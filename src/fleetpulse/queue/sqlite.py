"""The embedded queue: a SQLite file in WAL mode, ``queue.db`` in ``server.data_dir``.

Each publish becomes one row: the msgpack encoding of its ``list[Record]`` and its
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
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from fleetpulse.errors import QueueError, QueueFullError, QueueStorageFullError
from fleetpulse.metrics import QUEUE_DEPTH
from fleetpulse.model.record import Record
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
_INSERT = "INSERT INTO batches (record_count, payload) VALUES (?, ?)"
_SELECT_AFTER = (
    "SELECT batch_offset, record_count, payload FROM batches"
    " WHERE batch_offset > ? ORDER BY batch_offset LIMIT ?"
)
_DELETE = (
    "DELETE FROM batches WHERE batch_offset IN (SELECT value FROM json_each(?))"
    " RETURNING record_count"
)


class SqliteQueue(Queue):
    """The embedded, durable, bounded queue (``[queue] backend = "sqlite"``).

    ``publish`` returns after its row is committed, and fsynced when
    ``queue.synchronous`` is "full" (the default). Concurrent publishes share one
    commit. ``queue.capacity_records`` (default 2,000,000) bounds the records held.
    """

    def __init__(self, settings: Settings) -> None:
        self._data_dir = Path(settings.server.data_dir)
        self._path = self._data_dir / QUEUE_FILE
        self._synchronous = settings.queue.synchronous
        self._capacity = settings.queue.capacity_records
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Record])
        self._depth = 0
        self._last_offset = 0
        self._published = asyncio.Event()
        self._fetch_lock = asyncio.Lock()
        self._writer: SqliteWriter | None = None
        self._readers: ReaderPool | None = None
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
        """Append records as one row and return once the row is committed.

        Raises QueueFullError when the records would take the queue past its capacity,
        QueueStorageFullError when the disk is full and QueueError when the file cannot
        be written for another reason.
        """
        count = len(records)
        if count == 0:
            return
        writer = self._require_writer("publish")
        if self._depth + count > self._capacity:
            raise QueueFullError(self._depth, self._capacity)

        payload = self._encoder.encode(records if isinstance(records, list) else list(records))
        committed = writer.enqueue(
            partial(_insert_batch, count, payload), "publish", one_statement=True
        )
        # Reserved before the commit, so concurrent publishes cannot overshoot capacity.
        # The callback settles the reservation even if the caller is cancelled.
        self._depth += count
        committed.add_done_callback(partial(self._settle_publish, count))
        await asyncio.shield(committed)

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

    def _settle_publish(self, count: int, committed: asyncio.Future[None]) -> None:
        if committed.cancelled() or committed.exception() is not None:
            self._depth -= count
            return
        self._published.set()
        QUEUE_DEPTH.set(self._depth)

    def _settle_ack(self, committed: asyncio.Future[int]) -> None:
        if committed.cancelled() or committed.exception() is not None:
            return
        # Counts only the rows this ack deleted, so acknowledging twice is harmless.
        self._depth -= committed.result()
        QUEUE_DEPTH.set(self._depth)

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
    row = connection.execute("SELECT COALESCE(SUM(record_count), 0) FROM batches").fetchone()
    return int(row[0])


def _insert_batch(count: int, payload: bytes, connection: sqlite3.Connection) -> None:
    connection.execute(_INSERT, (count, payload))


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
