"""The process role: the processor and the notifier."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fleetpulse.config import Settings
from fleetpulse.notify.notifier import Notifier
from fleetpulse.notify.rulebook import RuleBook
from fleetpulse.process.engine import Processor
from fleetpulse.queue.base import Queue
from fleetpulse.store.base import ProcessedBatch, Store

log = logging.getLogger(__name__)


class ProcessRole:
    """Consumes the queue, writes to the store, then hands each stored batch to
    ``on_write`` (the live bus) and to the notifier.

    The caller opens and closes the queue and the store.
    """

    def __init__(
        self,
        settings: Settings,
        queue: Queue,
        store: Store,
        on_write: Callable[[ProcessedBatch], None],
    ) -> None:
        notify = settings.notify
        rulebook = RuleBook(notify.rules, settings.server.data_dir, bool(notify.smtp_host))
        self.notifier = Notifier(notify, rulebook)
        self.processor = Processor(
            settings, queue, store, on_write=fan_out(on_write, self.notifier.submit)
        )

    async def start(self) -> None:
        """Start the notifier, then the processor that feeds it."""
        await self.notifier.start()
        await self.processor.start()

    async def close(self) -> None:
        """Stop the processor, then the notifier. Safe to call twice."""
        await self.processor.close()
        await self.notifier.close()

    def health_problems(self) -> list[str]:
        """Return why processing stopped, or an empty list while it runs."""
        failure = self.processor.failure
        return [f"processor stopped: {failure}"] if failure is not None else []


def fan_out(*callbacks: Callable[[ProcessedBatch], None]) -> Callable[[ProcessedBatch], None]:
    """Combine after-write callbacks, so that one that raises does not skip the others."""

    def call_each(batch: ProcessedBatch) -> None:
        for callback in callbacks:
            try:
                callback(batch)
            except Exception:
                log.exception(
                    "after-write callback failed: callback=%s events=%s",
                    getattr(callback, "__qualname__", callback),
                    len(batch.events),
                )

    return call_each
