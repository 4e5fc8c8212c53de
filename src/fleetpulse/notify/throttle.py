"""Throttling of repeats: at most one notification per vehicle and rule per ``throttle_s``."""

from __future__ import annotations

import time
from collections.abc import Callable

# Entries are pruned once there are this many, which bounds memory for large fleets.
PRUNE_AT_ENTRIES = 100_000


class Throttle:
    """Send times of each (rule, vehicle) pair, by a monotonic clock in seconds."""

    def __init__(self, clock_s: Callable[[], float] = time.monotonic) -> None:
        self._clock_s = clock_s
        self._sent_at_s: dict[tuple[str, str], float] = {}
        self._max_throttle_s = 0.0

    def allow(self, rule_id: str, device_id: str, throttle_s: float) -> bool:
        """Return True and note the send if the pair has not sent within ``throttle_s``."""
        now_s = self._clock_s()
        key = (rule_id, device_id)
        last_s = self._sent_at_s.get(key)
        if last_s is not None and now_s - last_s < throttle_s:
            return False
        if len(self._sent_at_s) >= PRUNE_AT_ENTRIES:
            self._prune(now_s)
        self._sent_at_s[key] = now_s
        self._max_throttle_s = max(self._max_throttle_s, throttle_s)
        return True

    def forget_rule(self, rule_id: str) -> None:
        """Drop the entries of a deleted rule, so a new rule with its id starts afresh."""
        for key in [key for key in self._sent_at_s if key[0] == rule_id]:
            del self._sent_at_s[key]

    def _prune(self, now_s: float) -> None:
        # An entry older than the longest throttle can no longer hold anything back.
        expired = [
            k for k, sent_s in self._sent_at_s.items() if now_s - sent_s >= self._max_throttle_s
        ]
        for key in expired:
            del self._sent_at_s[key]
