"""A per-second budget for log lines that a busy or hostile peer could repeat endlessly."""

from __future__ import annotations

import time


class LogBudget:
    """Allows at most ``per_s`` events per one-second window and counts the rest.

    ``allow()`` returns whether to log now; ``take_suppressed()`` returns how many were
    refused since the last call, so the next logged line can mention them.
    """

    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self._window_start_s = 0.0
        self._used = 0
        self._suppressed = 0

    def allow(self) -> bool:
        now_s = time.monotonic()
        if now_s - self._window_start_s >= 1.0:
            self._window_start_s = now_s
            self._used = 0
        if self._used < self.per_s:
            self._used += 1
            return True
        self._suppressed += 1
        return False

    def take_suppressed(self) -> int:
        suppressed = self._suppressed
        self._suppressed = 0
        return suppressed
