"""Retention: delete what is older than ``[store] retention_days``, at start and hourly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from fleetpulse.store.base import Store

log = logging.getLogger(__name__)

# Retention deletes in the background; once an hour keeps the store within a day's
# worth of the configured bound without competing with writes.
RETENTION_INTERVAL_S = 3600.0


class RetentionTask:
    """Calls ``Store.purge`` at start and then every ``interval_s`` seconds.

    The purge is idempotent, so two processes that both run it delete each row once;
    the second one only repeats the search.
    """

    def __init__(
        self, store: Store, retention_days: float, interval_s: float = RETENTION_INTERVAL_S
    ) -> None:
        self._store = store
        self._keep_ms = int(retention_days * 86_400_000)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._run(), name="fleetpulse-retention")

    async def close(self) -> None:
        """Cancel the task and wait for it. Safe to call twice."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def stopped(self) -> bool:
        """True when the task ended on its own, which only an unexpected error causes."""
        return self._task is not None and self._task.done()

    async def _run(self) -> None:
        while True:
            cutoff_ms = time.time_ns() // 1_000_000 - self._keep_ms
            try:
                deleted = await self._store.purge(cutoff_ms)
            except Exception:
                log.exception("retention purge failed cutoff_ms=%d; retrying later", cutoff_ms)
            else:
                if deleted:
                    log.info("retention purge deleted=%d cutoff_ms=%d", deleted, cutoff_ms)
            await asyncio.sleep(self._interval_s)
