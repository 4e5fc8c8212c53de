"""The range partitions of the ``records`` table: creating them ahead, dropping old ones.

Each partition covers [from_ms, to_ms) of ``ts_ms``. Partitions are ``partition_days``
wide and aligned to the Unix epoch. A partition is clipped where it would overlap one
created earlier with another width, so changing ``partition_days`` never makes
CREATE TABLE fail. The table ``record_partitions`` lists them. Every change to it runs
under one advisory lock, so processes that write at the same moment create each
partition once.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
# pg_advisory_xact_lock key that serializes partition DDL ("fltp" and 2 in hex).
PARTITION_LOCK_KEY = 0x666C_7470_0000_0002
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """One partition of ``records``: the rows with from_ms <= ts_ms < to_ms."""

    from_ms: int
    to_ms: int
    name: str


class PartitionMap:
    """The known partitions, sorted by ``from_ms``, which never overlap."""

    def __init__(self, partitions: Iterable[Partition] = ()) -> None:
        self._partitions = sorted(partitions)
        self._starts = [partition.from_ms for partition in self._partitions]

    def __iter__(self) -> Iterator[Partition]:
        return iter(self._partitions)

    def __len__(self) -> int:
        return len(self._partitions)

    def find(self, ts_ms: int) -> Partition | None:
        """Return the partition that contains ``ts_ms``, or None."""
        index = bisect.bisect_right(self._starts, ts_ms) - 1
        if index >= 0 and ts_ms < self._partitions[index].to_ms:
            return self._partitions[index]
        return None

    def uncovered(self, ts_values: Iterable[int]) -> list[int]:
        """Return the distinct times in ``ts_values`` that no partition contains, sorted."""
        return sorted({ts for ts in set(ts_values) if self.find(ts) is None})

    def range_for(self, ts_ms: int, width_ms: int) -> tuple[int, int]:
        """Return [from_ms, to_ms) of a new partition that contains ``ts_ms``: its aligned
        window of ``width_ms``, clipped to the partitions on either side."""
        low = ts_ms - ts_ms % width_ms
        high = low + width_ms
        index = bisect.bisect_right(self._starts, ts_ms)
        if index > 0:
            low = max(low, self._partitions[index - 1].to_ms)
        if index < len(self._partitions):
            high = min(high, self._partitions[index].from_ms)
        return low, high


def partition_name(from_ms: int) -> str:
    """Name a partition by the UTC date it starts on, e.g. ``records_20240131``.

    A partition that does not start at midnight, or lies outside the years 1 to 9999,
    is named by its start in milliseconds instead.
    """
    if from_ms % DAY_MS == 0:
        try:
            day = _EPOCH + timedelta(milliseconds=from_ms)
        except OverflowError:
            pass
        else:
            return f"records_{day:%Y%m%d}"
    return f"records_ms_{from_ms}".replace("-", "minus_")


async def load(connection: asyncpg.Connection) -> PartitionMap:
    """Read ``record_partitions``."""
    rows = await connection.fetch("SELECT from_ms, to_ms, name FROM record_partitions")
    return PartitionMap(Partition(row["from_ms"], row["to_ms"], row["name"]) for row in rows)


async def create_covering(
    connection: asyncpg.Connection,
    ts_values: Iterable[int],
    width_ms: int,
    ahead: int,
) -> tuple[PartitionMap, list[Partition]]:
    """Create the partitions that the times need, plus ``ahead`` more after each.

    Runs in its own transaction under the partition lock, because CREATE TABLE ...
    PARTITION OF takes an ACCESS EXCLUSIVE lock on ``records`` until the commit
    (PostgreSQL 15), and a batch transaction should not hold that lock. Returns the
    partitions known afterwards and those created now.
    """
    created: list[Partition] = []
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY)
        known = await load(connection)
        for ts_ms in known.uncovered(ts_values):
            window_start = ts_ms - ts_ms % width_ms
            points = [ts_ms] + [window_start + step * width_ms for step in range(1, ahead + 1)]
            for point in points:
                if known.find(point) is not None:
                    continue
                from_ms, to_ms = known.range_for(point, width_ms)
                partition = Partition(from_ms, to_ms, partition_name(from_ms))
                await _create(connection, partition)
                created.append(partition)
                known = PartitionMap([*known, partition])
    for partition in created:
        log.info(
            "records partition created name=%s from_ms=%d to_ms=%d",
            partition.name,
            partition.from_ms,
            partition.to_ms,
        )
    return known, created


async def _create(connection: asyncpg.Connection, partition: Partition) -> None:
    # Bounds are integers computed here, so formatting them into the DDL is safe, and
    # DDL takes no bind parameters.
    await connection.execute(
        f'CREATE TABLE "{partition.name}" PARTITION OF records'
        f" FOR VALUES FROM ({partition.from_ms}) TO ({partition.to_ms})"
    )
    await connection.execute(
        "INSERT INTO record_partitions (name, from_ms, to_ms) VALUES ($1, $2, $3)",
        partition.name,
        partition.from_ms,
        partition.to_ms,
    )


async def drop_older(connection: asyncpg.Connection, older_than_ms: int) -> int:
    """Drop every partition that lies wholly before ``older_than_ms`` and return the number
    of rows they contained.

    Each drop runs in its own transaction under the partition lock, and counts the
    partition's rows first so that purge can report the rows deleted.
    """
    deleted = 0
    while True:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY)
            row = await connection.fetchrow(
                "SELECT name, from_ms, to_ms FROM record_partitions WHERE to_ms <= $1"
                " ORDER BY from_ms LIMIT 1",
                older_than_ms,
            )
            if row is None:
                return deleted
            name = row["name"]
            rows = int(await connection.fetchval(f'SELECT count(*) FROM "{name}"'))
            await connection.execute(f'DROP TABLE "{name}"')
            await connection.execute("DELETE FROM record_partitions WHERE name = $1", name)
        deleted += rows
        log.info(
            "records partition dropped name=%s from_ms=%d to_ms=%d rows=%d",
            name,
            row["from_ms"],
            row["to_ms"],
            rows,
        )


async def straddling(connection: asyncpg.Connection, cutoff_ms: int) -> list[str]:
    """Return the names of the partitions that contain rows both before and after the cutoff."""
    rows = await connection.fetch(
        "SELECT name FROM record_partitions WHERE from_ms < $1 AND to_ms > $1 ORDER BY from_ms",
        cutoff_ms,
    )
    return [row["name"] for row in rows]
