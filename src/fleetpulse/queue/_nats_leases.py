"""Partition leases and members in a NATS key-value bucket whose entries expire.

The bucket ``<stream>-leases`` keeps each entry for ``lease_ttl_s`` after its last
write. Key ``partition.<p>`` contains the owner id of partition p: ``create`` claims a
free partition, and ``update`` with the revision of the last write renews it, so a
renewal fails once the lease expired and someone else claimed it. Key
``member.<owner id>`` announces a live consumer, so each one can count the members and
take a fair share of the partitions.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext, api
from nats.js.errors import (
    APIError,
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

PARTITION_KEY = "partition.{}"
MEMBER_KEY = "member.{}"
# JetStream error code of a write whose expected last sequence does not match.
WRONG_LAST_SEQUENCE_CODE = 10071


class LeaseBucket:
    """The lease and member entries of one consumer, identified by ``owner_id``."""

    def __init__(self, js: JetStreamContext, bucket: str, owner_id: str, ttl_s: float) -> None:
        self.bucket = bucket
        self.owner_id = owner_id
        self._js = js
        self._ttl_s = ttl_s
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Create the bucket, or bind to it when another process created it first."""
        try:
            self._kv = await self._js.create_key_value(
                bucket=self.bucket,
                ttl=self._ttl_s,
                history=1,
                storage=api.StorageType.FILE,
                description="fleetpulse partition leases and members",
            )
            return
        except BadRequestError as exc:
            # The bucket exists with another configuration, such as another TTL.
            log.debug("lease bucket exists, binding to it: bucket=%s error=%s", self.bucket, exc)
        self._kv = await self._js.key_value(self.bucket)
        status = await self._kv.status()
        if abs((status.ttl or 0.0) - self._ttl_s) > 0.001:
            log.warning(
                "lease bucket has another TTL than nats.lease_ttl_s, which stays in force "
                "until the bucket is deleted: bucket=%s ttl_s=%s lease_ttl_s=%s",
                self.bucket,
                status.ttl,
                self._ttl_s,
            )

    async def announce(self) -> None:
        """Write this consumer's member entry, which keeps it counted for another TTL."""
        await self._require().put(MEMBER_KEY.format(self.owner_id), b"")

    async def withdraw(self) -> None:
        """Remove this consumer's member entry, so the others stop counting it.

        A purge of the subject leaves no delete marker, which count_members would count.
        """
        await self._js.purge_stream(
            f"KV_{self.bucket}", subject=f"$KV.{self.bucket}.{MEMBER_KEY.format(self.owner_id)}"
        )

    async def count_members(self) -> int:
        """Return the number of live member entries, this consumer's included."""
        info = await self._js.stream_info(
            f"KV_{self.bucket}", subjects_filter=f"$KV.{self.bucket}.member.>"
        )
        return max(1, len(info.state.subjects or {}))

    async def claim(self, partition: int) -> int | None:
        """Create the lease of a partition and return its revision, or None when it is taken."""
        try:
            return await self._require().create(
                PARTITION_KEY.format(partition), self.owner_id.encode()
            )
        except KeyWrongLastSequenceError:
            return None

    async def renew(self, partition: int, revision: int) -> int | None:
        """Renew a lease written at ``revision`` and return the new revision, or None if lost."""
        try:
            return await self._require().update(
                PARTITION_KEY.format(partition), self.owner_id.encode(), last=revision
            )
        except KeyWrongLastSequenceError:
            return None

    async def release(self, partition: int, revision: int) -> None:
        """Delete a lease still at ``revision``, so a lease that another consumer took stays."""
        try:
            await self._require().delete(PARTITION_KEY.format(partition), last=revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError, NotFoundError):
            log.info(
                "lease already expired or taken when releasing: partition=%s owner=%s",
                partition,
                self.owner_id,
            )
        except APIError as exc:
            if exc.err_code != WRONG_LAST_SEQUENCE_CODE:
                raise

    def _require(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("lease bucket used before open()")
        return self._kv
