"""The ingest role: telemetry HTTP routes and device protocol listeners."""

from __future__ import annotations

import logging

from starlette.routing import BaseRoute

from fleetpulse.config import Settings
from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.protocols.base import ProtocolListener, enabled_listeners
from fleetpulse.ingest.service import IngestService
from fleetpulse.queue.base import Queue
from fleetpulse.store.base import Store

log = logging.getLogger(__name__)


class IngestRole:
    """Validates records, publishes them to the queue and writes dead letters to the store.

    The caller opens and closes the queue and the store, and serves ``routes()``.
    """

    def __init__(self, settings: Settings, queue: Queue, store: Store) -> None:
        self.service = IngestService(settings, queue, store)
        self.listeners: list[ProtocolListener] = enabled_listeners(settings, self.service)

    def routes(self) -> list[BaseRoute]:
        """Return ``POST /v1/telemetry``."""
        return list(telemetry_routes(self.service))

    async def start(self) -> None:
        """Start the protocol listeners. The queue and the store must be open."""
        for listener in self.listeners:
            await listener.start()
            log.info("protocol listener started: %s", listener.describe())

    async def close(self) -> None:
        """Stop the listeners, so that no device gets another acknowledgement."""
        for listener in self.listeners:
            await listener.close()
