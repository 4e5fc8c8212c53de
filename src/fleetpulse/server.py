"""The embedded pipeline in one process: ingest, queue, processor, store and API.

``EmbeddedServer`` wires the stages together and serves them over HTTP with uvicorn.
``fleetpulse run`` and ``fleetpulse demo`` use it; so do the end-to-end tests.
"""

from __future__ import annotations

import logging
import time

from fleetpulse.auth.bind import check_bind
from fleetpulse.auth.tls import tls_files
from fleetpulse.config import Settings
from fleetpulse.datadir import DataDirLock, create_data_dir
from fleetpulse.ingest.protocols.base import ProtocolListener
from fleetpulse.live.bus import open_live_bus
from fleetpulse.process.engine import Processor
from fleetpulse.queue.base import Queue, open_queue
from fleetpulse.queue.sqlite import SqliteQueue
from fleetpulse.roles.api import ApiRole
from fleetpulse.roles.child import ChildProcessRole
from fleetpulse.roles.http import HttpEndpoint
from fleetpulse.roles.ingest import IngestRole
from fleetpulse.roles.process import ProcessRole
from fleetpulse.store.base import Store, open_store

log = logging.getLogger(__name__)


class EmbeddedServer:
    """All three roles in one process on one HTTP port, with SQLite queue and store by default.

    The ingest, process and API roles (``fleetpulse.roles``) share the queue, the store
    and a live bus, which is a function call unless ``[live] bus`` selects NATS.

    With the SQLite queue and ``[process] child_process`` (the default), the processor
    runs in a child OS process (``ChildProcessRole``) on the same files, and
    ``processor`` is that role, which offers ``drain`` and ``failure`` as a
    ``Processor`` does. Otherwise the processor is a task of this process.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue: Queue = open_queue(settings)
        self.store: Store = open_store(settings)
        self.bus = open_live_bus(settings, "fleetpulse-run")

        self.ingest_role = IngestRole(settings, self.queue, self.store)
        self.ingest = self.ingest_role.service
        self.listeners: list[ProtocolListener] = self.ingest_role.listeners

        self.process_role: ProcessRole | ChildProcessRole
        self.processor: Processor | ChildProcessRole
        if settings.process.child_process and isinstance(self.queue, SqliteQueue):
            self.process_role = ChildProcessRole(settings, self.queue, self.bus.publish)
            self.processor = self.process_role
        else:
            self.process_role = ProcessRole(settings, self.queue, self.store, self.bus.publish)
            self.processor = self.process_role.processor
        self.notifier = self.process_role.notifier

        self.api_role = ApiRole(
            settings, self.store, self.queue, health_problems=self.process_role.health_problems
        )
        self.live = self.api_role.live
        self.bus.subscribe(self.live.publish)
        self.context = self.api_role.context
        self.app = self.api_role.app(extra_routes=self.ingest_role.routes(), notifier=self.notifier)

        server = settings.server
        tls = tls_files("server", server.tls_cert_file, server.tls_key_file)
        self._http = HttpEndpoint(self.app, server.host, server.port, "fleetpulse-http", tls)
        self.started_at_s = 0.0
        self._lock = DataDirLock(server.data_dir)

    @property
    def url(self) -> str:
        """Return the base URL the server listens on, with the port actually bound."""
        return self._http.url

    async def start(self) -> None:
        """Open the backends, start processing and begin serving HTTP."""
        server = self.settings.server
        # Raises ConfigError before anything listens beyond loopback without keys.
        check_bind(self.settings)
        create_data_dir(server.data_dir)
        self._lock.acquire()

        await self.store.start()
        await self.queue.start()
        # The hub before the bus and the processor, so that it has read the newest event
        # id before any batch is published to it.
        await self.api_role.start()
        await self.bus.start()
        await self.process_role.start()

        await self._http.start()
        await self.ingest_role.start()
        self.started_at_s = time.monotonic()
        log.info(
            "server started url=%s data_dir=%s live_bus=%s processor=%s",
            self.url,
            server.data_dir,
            self.bus.describe(),
            "child process" if isinstance(self.process_role, ChildProcessRole) else "in process",
        )

    async def wait(self) -> None:
        """Wait until the HTTP server stops (Ctrl-C or SIGTERM, which uvicorn handles)."""
        await self._http.wait()

    async def close(self) -> None:
        """Stop the listeners first so nothing new is acknowledged, then the rest."""
        await self.ingest_role.close()
        # Live clients get a 1001 close frame before uvicorn drops their connections.
        await self.api_role.close_live()
        await self._http.close()
        await self.api_role.close()
        await self.process_role.close()
        await self.bus.close()
        await self.queue.close()
        await self.store.close()
        self._lock.release()
        log.info("server stopped")
