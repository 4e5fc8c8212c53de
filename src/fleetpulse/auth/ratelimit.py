"""A token bucket per device id, for ``[ingest] device_rate_records_per_s``.

A batch is admitted when the device's bucket contains at least ``min(records, burst)``
tokens, and it then takes all its records, so the bucket may go negative. A device that
uploads a backlog larger than the burst in one request is therefore admitted once and
then waits until its debt is paid back at the configured rate. Over time a device gets
at most ``rate`` records per second; at one moment at most ``burst`` plus one batch.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

# Buckets kept at most. The least recently used one is dropped beyond it, which refills
# that device's bucket, so the bound only matters when more devices than this send.
MAX_TRACKED_DEVICES: Final = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one check: the devices over their limit and when to try again."""

    limited_devices: frozenset[str]
    retry_after_s: int

    @property
    def admitted(self) -> bool:
        return not self.limited_devices


ADMITTED: Final = RateDecision(frozenset(), 0)


class DeviceRateLimiter:
    """Token buckets by device id. ``rate_per_s`` 0 admits everything."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_devices: int = MAX_TRACKED_DEVICES,
    ) -> None:
        if rate_per_s < 0 or burst < 1:
            raise ValueError(
                f"rate limit {rate_per_s} records/s with burst {burst} is invalid; "
                "use a rate >= 0 and a burst >= 1"
            )
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._max_devices = max_devices
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def take(self, counts: Mapping[str, int]) -> RateDecision:
        """Take ``counts[device]`` tokens from each device's bucket, all or none.

        When any device lacks tokens, no bucket changes and the decision names the
        devices over their limit, with the whole seconds until all of them have enough.
        """
        if not self.enabled or not counts:
            return ADMITTED
        now = self._clock()
        buckets = {device: self._refill(device, now) for device in counts}
        limited: set[str] = set()
        wait_s = 0.0
        for device, count in counts.items():
            needed = min(count, self.burst)
            tokens = buckets[device].tokens
            if tokens < needed:
                limited.add(device)
                wait_s = max(wait_s, (needed - tokens) / self.rate_per_s)
        if limited:
            return RateDecision(frozenset(limited), max(1, math.ceil(wait_s)))
        for device, count in counts.items():
            buckets[device].tokens -= count
        return ADMITTED

    def _refill(self, device: str, now: float) -> _Bucket:
        bucket = self._buckets.get(device)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[device] = bucket
            if len(self._buckets) > self._max_devices:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(device)
            elapsed = max(0.0, now - bucket.updated_s)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.updated_s = now
        return bucket
