"""The checks every ingest transport applies to validated records before publishing them.

``IngestGuard`` turns records of a device that the sender may not send for into rejects
with reason ``device_not_allowed``, and counts records per device against the rate
limit. Each transport responds to a rate-limited batch in its own way: HTTP 429, Teltonika
no acknowledgement, MQTT a dead letter.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from fleetpulse.auth.keyfile import KeyStore, key_file_path
from fleetpulse.auth.ratelimit import DeviceRateLimiter, RateDecision
from fleetpulse.auth.tokens import Credential
from fleetpulse.config import Settings
from fleetpulse.model.record import Record
from fleetpulse.model.validate import Reject
from fleetpulse.model.vocabulary import DEVICE_NOT_ALLOWED

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
# One guard per ingest service, so that HTTP and every protocol listener of a process
# share the rate-limit buckets of a device.
_GUARDS: weakref.WeakKeyDictionary[object, IngestGuard] = weakref.WeakKeyDictionary()


@dataclass(slots=True)
class GuardedBatch:
    """The records that may be published and every reject of the batch, old and new."""

    records: list[Record]
    rejects: list[Reject]


class IngestGuard:
    """Device permissions (with ``[auth] enabled``) and the per-device rate limit.

    ``keys`` is None when authentication is off; then every device is allowed.
    """

    def __init__(self, settings: Settings, keys: KeyStore | None) -> None:
        self.settings = settings
        self.keys = keys
        ingest = settings.ingest
        self.limiter = DeviceRateLimiter(
            ingest.device_rate_records_per_s, max(1, ingest.device_burst_records)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestGuard:
        """Build a guard with its own key store on ``[auth] key_file`` when auth is on."""
        keys = KeyStore(key_file_path(settings)) if settings.auth.enabled else None
        return cls(settings, keys)

    @classmethod
    def shared(cls, service: object, settings: Settings) -> IngestGuard:
        """Return the guard of ``service`` (an IngestService), built on first use."""
        guard = _GUARDS.get(service)
        if guard is None:
            guard = cls.from_settings(settings)
            _GUARDS[service] = guard
        return guard

    @property
    def active(self) -> bool:
        """Return whether the guard checks anything; if not, transports may skip it."""
        return self.keys is not None or self.limiter.enabled

    def device_allowed(self, device_id: str, credential: Credential | None) -> bool:
        """Return whether records of ``device_id`` are accepted from this sender.

        With a credential, it must cover the device. Without one (a protocol without
        tokens), the device must be listed by an active device token in the key file.
        """
        if self.keys is None:
            return True
        if credential is not None:
            return credential.covers_device(device_id)
        return self.keys.device_known(device_id)

    def filter_devices(
        self, records: list[Record], rejects: Sequence[Reject], credential: Credential | None
    ) -> GuardedBatch:
        """Move the records of devices the sender may not send for to the rejects.

        A new reject gets the record's index in the request: the indices that the
        validation rejects leave free, in order.
        """
        if self.keys is None:
            return GuardedBatch(records, list(rejects))
        sender = f"key {credential.key_id}" if credential is not None else "the key file"
        return self._filter(
            records, rejects, lambda device: self.device_allowed(device, credential), sender
        )

    def filter_topic_devices(
        self, records: list[Record], rejects: Sequence[Reject], topic: str, topic_device: str | None
    ) -> GuardedBatch:
        """Like ``filter_devices`` for an MQTT message published to ``topic``.

        When the topic names a device, every record must be of that device and the device
        must have a device token, so that a broker ACL per topic also binds the payload.
        """
        if self.keys is None:
            return GuardedBatch(records, list(rejects))
        if topic_device is None:
            return self.filter_devices(records, rejects, None)
        known = self.keys.device_known(topic_device)
        return self._filter(
            records,
            rejects,
            lambda device: known and device == topic_device,
            f"topic {topic} (records of the topic's own device only, with a device token)",
        )

    def _filter(
        self,
        records: list[Record],
        rejects: Sequence[Reject],
        allowed_device: Callable[[str], bool],
        sender: str,
    ) -> GuardedBatch:
        allowed: list[Record] = []
        rejected: list[tuple[int, Record]] = []
        indices = record_indices(len(records), (reject.index for reject in rejects))
        for index, record in zip(indices, records, strict=True):
            if allowed_device(record.device_id):
                allowed.append(record)
            else:
                rejected.append((index, record))
        if not rejected:
            return GuardedBatch(records, list(rejects))
        log.info(
            "records rejected reason=%s records=%d first_device=%s sender=%s",
            DEVICE_NOT_ALLOWED,
            len(rejected),
            rejected[0][1].device_id,
            sender,
        )
        limit = self.settings.ingest.dead_letter_raw_bytes
        new_rejects = [
            Reject(
                index,
                DEVICE_NOT_ALLOWED,
                f"device {record.device_id!r} is not covered by {sender}; send its records "
                "with its own device token, or ask an operator to create one with "
                f"`fleetpulse keys create --device {record.device_id}`",
                _encoder.encode(msgspec.structs.asdict(record))[:limit],
                record.device_id,
            )
            for index, record in rejected
        ]
        merged = sorted([*rejects, *new_rejects], key=lambda reject: reject.index)
        return GuardedBatch(allowed, merged)

    def take(self, records: Iterable[Record]) -> RateDecision:
        """Take rate-limit tokens for ``records``, all or none (see DeviceRateLimiter)."""
        if not self.limiter.enabled:
            return self.limiter.take({})
        return self.limiter.take(Counter(record.device_id for record in records))


def record_indices(count: int, reject_indices: Iterable[int]) -> list[int]:
    """Return the request indices of ``count`` valid records: those no reject holds."""
    taken = set(reject_indices)
    indices: list[int] = []
    index = 0
    while len(indices) < count:
        if index not in taken:
            indices.append(index)
        index += 1
    return indices
