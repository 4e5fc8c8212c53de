"""The queue interface every backend implements.

Semantics, shared by the embedded SQLite backend and a distributed one such as NATS
JetStream:

- ``publish`` returns only once the records are durable in the queue; it raises
  QueueFullError when the queue holds ``capacity_records`` so ingest can answer 503.
- Records are split into a fixed number of partitions by ``partition_of(device_id)``;
  one vehicle's records stay in one partition, in publish order.
- ``fetch`` hands out deliveries; each carries the offset of its last message so a
  consumer can acknowledge up to it. Unacknowledged deliveries are handed out again
  after a restart (at-least-once), so consumers must be idempotent.
- ``ack`` advances the consumer's committed offset; acknowledged messages are never
  delivered again.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fleetpulse.model.record import Record

if TYPE_CHECKING:
    from fleetpulse.config import Settings


@dataclass(slots=True)
class Delivery:
    """Records handed to a consumer, with what the backend needs to acknowledge them."""

    partition: int
    offset: int
    records: list[Record]
    # Backend-specific acknowledgement handle (a JetStream message, for example).
    token: Any = field(default=None, repr=False)


def partition_of(device_id: str, partitions: int) -> int:
    """Return the partition of a vehicle: a stable hash, the same in every process."""
    return zlib.crc32(device_id.encode()) % partitions


class Queue(abc.ABC):
    """A durable, bounded, partitioned queue of records."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend; pending unacknowledged messages become fetchable again."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and release the backend. Safe to call twice."""

    @abc.abstractmethod
    async def publish(self, records: Sequence[Record]) -> None:
        """Append records durably. Raises QueueFullError at capacity, QueueError on failure."""

    @abc.abstractmethod
    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivery]:
        """Return up to about ``max_records`` unacknowledged records, waiting up to
        ``timeout_s`` seconds for the first one. Returns an empty list on timeout."""

    @abc.abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark deliveries as processed so they are never handed out again."""

    @abc.abstractmethod
    def depth(self) -> int:
        """Return the number of records published and not yet acknowledged."""


def open_queue(settings: Settings) -> Queue:
    """Build the queue backend chosen by ``[queue] backend``."""
    if settings.queue.backend == "sqlite":
        from fleetpulse.queue.sqlite import SqliteQueue

        return SqliteQueue(settings)
    raise ValueError(f"unknown queue backend {settings.queue.backend!r}")
