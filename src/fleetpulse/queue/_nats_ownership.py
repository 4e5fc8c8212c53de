"""Which partitions of the JetStream queue this processor owns, and the handover of them.

Every third of ``nats.lease_ttl_s`` a cycle renews this processor's member entry and
partition leases (see ``_nats_leases``) and counts the members. It then moves towards a
fair share of ``ceil(partitions / members)``. Partitions above the share are released
once their handed-out messages are acknowledged, and free ones are claimed below it.

Taking a partition over deletes every consumer on its subject and creates a new one
that delivers from the start of the stream. With WorkQueue retention the stream holds
exactly the unacknowledged messages, so the new owner gets the old owner's
unacknowledged messages first and in order, without waiting for their ack wait. The
old owner, if it is still running, sees its pull requests end with "409 Consumer
Deleted" and its acknowledgements find no responder, and drops the partition.

Consumer names are unique per takeover, so an acknowledgement of the old owner cannot
reach the new owner's consumer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from fleetpulse.queue._nats_leases import LeaseBucket
from fleetpulse.queue._nats_puller import PartitionPuller

log = logging.getLogger(__name__)

# A cycle runs this many times per lease TTL, so a lease survives two failed renewals.
RENEWALS_PER_TTL = 3
# Lifetime of a pull request. A new one is sent when one ends.
PULL_EXPIRES_S = 5.0


@dataclass(slots=True)
class OwnedPartition:
    """A partition whose lease this processor holds, with its consumer's puller."""

    partition: int
    revision: int
    # time.monotonic() of the last successful lease write.
    renewed_at: float
    puller: PartitionPuller
    # Stream sequences handed out and not yet acknowledged.
    in_flight: set[int] = field(default_factory=set)
    # Stream sequence of the newest message handed out. An older one arriving later is a
    # redelivery.
    last_handed_seq: int = 0
    releasing: bool = False


@dataclass(frozen=True, slots=True)
class PartitionSettings:
    """Settings of the ownership cycle, taken from [queue] and [nats]."""

    stream: str
    subject_prefix: str
    partitions: int
    lease_ttl_s: float
    ack_wait_s: float
    pull_batch: int


class PartitionOwnership:
    """Claims, renews, hands over and releases this processor's partitions."""

    def __init__(
        self,
        client: Client,
        js: JetStreamContext,
        leases: LeaseBucket,
        settings: PartitionSettings,
        on_change: Callable[[], None],
    ) -> None:
        self._client = client
        self._js = js
        self._leases = leases
        self._settings = settings
        # Called when buffered messages or the set of partitions changed, to wake fetch().
        self._on_change = on_change
        self._owned: dict[int, OwnedPartition] = {}
        # Partitions reported to the ownership listener as acquired.
        self._announced: set[int] = set()
        # Partitions given up and not yet reported to the listener.
        self._released: set[int] = set()
        self._consumer_numbers = itertools.count(1)
        self._cycle_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False

    @property
    def interval_s(self) -> float:
        return self._settings.lease_ttl_s / RENEWALS_PER_TTL

    async def ensure_started(self) -> None:
        """Join the members and claim a first share of partitions, once."""
        if self._started or self._stopped:
            return
        async with self._cycle_lock:
            if self._started:
                return
            await self._leases.open()
            await self._cycle()
            self._started = True
        self._task = asyncio.create_task(self._run(), name="fleetpulse-partition-leases")
        log.info(
            "partition ownership started: owner=%s partitions=%s owned=%s",
            self._leases.owner_id,
            self._settings.partitions,
            sorted(self._owned),
        )

    async def stop(self, release: bool) -> None:
        """Stop renewing, and with ``release`` delete the leases.

        Other processors claim deleted leases in their next cycle, without waiting for
        the leases to expire.
        """
        self._stopped = True
        task = self._task
        self._task = None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        async with self._cycle_lock:
            released = sorted(self._owned)
            try:
                for owned in list(self._owned.values()):
                    await owned.puller.stop()
                    if release:
                        await self._leases.release(owned.partition, owned.revision)
                if release and self._started:
                    await self._leases.withdraw()
            except (nats.errors.Error, TimeoutError) as exc:
                # The leases expire on their own after nats.lease_ttl_s.
                log.warning(
                    "partition leases not deleted at stop: owner=%s partitions=%s error=%r",
                    self._leases.owner_id,
                    released,
                    exc,
                )
            self._owned.clear()
        log.info(
            "partition ownership stopped: owner=%s released=%s leases_deleted=%s",
            self._leases.owner_id,
            released,
            release,
        )

    def owned_partitions(self) -> frozenset[int]:
        return frozenset(self._announced)

    def take_changes(self) -> tuple[frozenset[int], frozenset[int]]:
        """Return (acquired, released) partitions not yet reported to the listener."""
        acquired = frozenset(p for p in self._owned if p not in self._announced)
        return acquired, frozenset(self._released)

    def confirm_changes(self, acquired: frozenset[int], released: frozenset[int]) -> None:
        """Mark changes as reported to the listener, so acquired partitions can be handed out."""
        self._released -= released
        # A partition lost while the listener ran stays out of the announced set.
        self._announced |= {p for p in acquired if p in self._owned}

    def get(self, partition: int) -> OwnedPartition | None:
        return self._owned.get(partition)

    def handout_partitions(self) -> list[OwnedPartition]:
        """Return the partitions whose messages may be handed out now.

        A partition is left out while it is being released, after its consumer was
        deleted, and when its lease was last renewed more than a TTL ago: by then another
        processor may own it.
        """
        now = time.monotonic()
        ttl_s = self._settings.lease_ttl_s
        return [
            owned
            for p, owned in self._owned.items()
            if p in self._announced
            and not owned.releasing
            and not owned.puller.lost
            and now - owned.renewed_at < ttl_s
        ]

    def mark_lost(self, partition: int, reason: str) -> None:
        """Stop handing out a partition another processor took; the next cycle drops it."""
        owned = self._owned.get(partition)
        if owned is not None and not owned.puller.lost:
            owned.puller.lost = True
            log.warning(
                "partition lost: partition=%s owner=%s reason=%s",
                partition,
                self._leases.owner_id,
                reason,
            )
            self._on_change()

    def forget_requests(self) -> None:
        """Make every puller send a new pull request, after a reconnect dropped the open ones."""
        for owned in self._owned.values():
            owned.puller.forget_request()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                async with self._cycle_lock:
                    if self._stopped:
                        return
                    await self._cycle()
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning(
                    "partition lease cycle failed, retrying in %.1f s: owner=%s error=%r",
                    self.interval_s,
                    self._leases.owner_id,
                    exc,
                )

    async def _cycle(self) -> None:
        try:
            await self._leases.announce()
        except (nats.errors.Error, TimeoutError) as exc:
            log.warning("member entry not renewed: owner=%s error=%r", self._leases.owner_id, exc)
        await self._renew_leases()
        members = await self._leases.count_members()
        share = math.ceil(self._settings.partitions / members)
        await self._release_above(share)
        await self._claim_up_to(share)

    async def _renew_leases(self) -> None:
        for partition, owned in list(self._owned.items()):
            if owned.puller.lost:
                await self._drop(partition, "consumer deleted by a new owner")
                continue
            try:
                revision = await self._leases.renew(partition, owned.revision)
            except (nats.errors.Error, TimeoutError) as exc:
                age_s = time.monotonic() - owned.renewed_at
                log.warning(
                    "lease not renewed: partition=%s owner=%s lease_age_s=%.1f error=%r",
                    partition,
                    self._leases.owner_id,
                    age_s,
                    exc,
                )
                if age_s >= self._settings.lease_ttl_s:
                    await self._drop(partition, "lease expired while it could not be renewed")
                continue
            if revision is None:
                await self._drop(partition, "lease expired and was claimed by another processor")
                continue
            owned.revision = revision
            owned.renewed_at = time.monotonic()

    async def _release_above(self, share: int) -> None:
        keeping = sorted(p for p, owned in self._owned.items() if not owned.releasing)
        for partition in keeping[share:]:
            self._owned[partition].releasing = True
            log.info(
                "releasing partition above fair share: partition=%s owner=%s share=%s",
                partition,
                self._leases.owner_id,
                share,
            )
        for partition, owned in list(self._owned.items()):
            # Released once every message handed out is acknowledged, so the next owner
            # does not process a batch this processor is still writing.
            if owned.releasing and not owned.in_flight:
                await self._drop(partition, "released to another processor")
                await self._leases.release(partition, owned.revision)

    async def _claim_up_to(self, share: int) -> None:
        if len(self._owned) >= share:
            return
        partitions = self._settings.partitions
        # Members start their search at different partitions, so that members starting
        # together collide on fewer leases.
        first = zlib.crc32(self._leases.owner_id.encode()) % partitions
        for step in range(partitions):
            if len(self._owned) >= share:
                return
            partition = (first + step) % partitions
            if partition in self._owned:
                continue
            revision = await self._leases.claim(partition)
            if revision is None:
                continue
            try:
                await self._take_over(partition, revision)
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning(
                    "partition takeover failed, releasing its lease: partition=%s owner=%s "
                    "error=%r",
                    partition,
                    self._leases.owner_id,
                    exc,
                )
                await self._leases.release(partition, revision)

    async def _take_over(self, partition: int, revision: int) -> None:
        settings = self._settings
        subject = f"{settings.subject_prefix}.{partition}"
        for info in await self._js.consumers_info(settings.stream):
            if info.config.filter_subject == subject:
                await self._js.delete_consumer(settings.stream, info.name)
                log.info(
                    "deleted the previous owner's consumer: partition=%s consumer=%s "
                    "unacknowledged=%s",
                    partition,
                    info.name,
                    info.num_ack_pending,
                )

        consumer = f"p{partition}-{self._leases.owner_id}-{next(self._consumer_numbers)}"
        await self._js.add_consumer(
            settings.stream,
            api.ConsumerConfig(
                name=consumer,
                durable_name=consumer,
                filter_subject=subject,
                deliver_policy=api.DeliverPolicy.ALL,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=settings.ack_wait_s,
            ),
        )
        puller = PartitionPuller(
            self._client,
            settings.stream,
            consumer,
            partition,
            settings.pull_batch,
            PULL_EXPIRES_S,
            self._on_change,
        )
        await puller.start()
        self._owned[partition] = OwnedPartition(partition, revision, time.monotonic(), puller)
        log.info(
            "partition acquired: partition=%s owner=%s consumer=%s",
            partition,
            self._leases.owner_id,
            consumer,
        )
        self._on_change()

    async def _drop(self, partition: int, reason: str) -> None:
        owned = self._owned.pop(partition, None)
        if owned is None:
            return
        await owned.puller.stop()
        if partition in self._announced:
            self._announced.discard(partition)
            self._released.add(partition)
        log.info(
            "partition dropped: partition=%s owner=%s reason=%s unacknowledged=%s",
            partition,
            self._leases.owner_id,
            reason,
            len(owned.in_flight),
        )
        self._on_change()
