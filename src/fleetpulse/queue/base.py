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
- A backend shared by several consumers gives each partition to one consumer at a time.
  ``owned_partitions`` names this consumer's partitions, and the ownership listener is
  awaited inside ``fetch``, before records of a newly acquired partition are handed out.
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Awaitable, Callable, Sequence
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


# Awaited with (acquired, released) partitions when this consumer's ownership changes.
OwnershipListener = Callable[[frozenset[int], frozenset[int]], Awaitable[None]]


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

    async def check(self) -> str | None:
        """Return why the queue cannot publish or fetch now, or None when it can.

        ``/healthz`` awaits it, so a backend that queries a server bounds the request with a
        timeout of about two seconds. An embedded backend returns None.
        """
        return None

    def owned_partitions(self) -> frozenset[int] | None:
        """Return the partitions this consumer processes, or None when it processes all.

        A backend with one consumer, such as SQLite, returns None.
        """
        return None

    def set_ownership_listener(self, listener: OwnershipListener | None) -> None:
        """Register the coroutine awaited in ``fetch`` with (acquired, released) partitions.

        The listener runs before any record of an acquired partition is handed out, and
        after a released partition's records stop being handed out. A backend that hands
        every partition to its one consumer never calls it.
        """
        return None


def open_queue(settings: Settings) -> Queue:
    """Build the queue backend chosen by ``[queue] backend``."""
    if settings.queue.backend == "sqlite":
        from fleetpulse.queue.sqlite import SqliteQueue

        return SqliteQueue(settings)
    if settings.queue.backend == "jetstream":
        from fleetpulse.queue.jetstream import JetStreamQueue

        return JetStreamQueue(settings)
    raise ValueError(f"unknown queue backend {settings.queue.backend!r}")
