"""The embedded pipeline in one process: ingest, queue, processor, store and API.

``EmbeddedServer`` wires the stages together and serves them over HTTP with uvicorn.
``fleetpulse run`` and ``fleetpulse demo`` use it; so do the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.config import Settings
from fleetpulse.datadir import DataDirLock
from fleetpulse.httpserve import bind_tcp, start_uvicorn
from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.protocols.base import ProtocolListener, enabled_listeners
from fleetpulse.ingest.service import IngestService
from fleetpulse.live.hub import LiveHub
from fleetpulse.notify.notifier import Notifier
from fleetpulse.notify.rulebook import RuleBook
from fleetpulse.process.engine import Processor
from fleetpulse.queue.base import Queue, open_queue
from fleetpulse.store.base import ProcessedBatch, Store, open_store

log = logging.getLogger(__name__)

# Retention deletes in the background; once an hour keeps the store within a day's
# worth of the configured bound without competing with writes.
RETENTION_INTERVAL_S = 3600.0
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


class EmbeddedServer:
    """All stages in one process, with embedded SQLite queue and store by default."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue: Queue = open_queue(settings)
        self.store: Store = open_store(settings)
        self.ingest = IngestService(settings, self.queue, self.store)

        self.live = LiveHub(settings.live, self.store)
        notify = settings.notify
        rulebook = RuleBook(notify.rules, settings.server.data_dir, bool(notify.smtp_host))
        self.notifier = Notifier(notify, rulebook)
        self.processor = Processor(
            settings,
            self.queue,
            self.store,
            on_write=_fan_out(self.live.publish, self.notifier.submit),
        )
        self.listeners: list[ProtocolListener] = enabled_listeners(settings, self.ingest)

        self.context = ApiContext(
            settings=settings,
            store=self.store,
            queue=self.queue,
            health_problems=self._health_problems,
        )
        self.app = create_app(
            self.context,
            extra_routes=list(telemetry_routes(self.ingest)),
            live_hub=self.live,
            notifier=self.notifier,
        )

        self._uvicorn: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.started_at_s = 0.0
        self._lock = DataDirLock(settings.server.data_dir)

    @property
    def url(self) -> str:
        """Return the base URL the server listens on, with the port actually bound."""
        if self._socket is None:
            raise RuntimeError("server not started")
        host, port = self._socket.getsockname()[:2]
        url_host = f"[{host}]" if ":" in host else host
        return f"http://{url_host}:{port}"

    async def start(self) -> None:
        """Open the backends, start processing and begin serving HTTP."""
        server = self.settings.server
        Path(server.data_dir).mkdir(parents=True, exist_ok=True)
        self._lock.acquire()

        if server.host not in LOOPBACK_HOSTS:
            # TODO: refuse to bind beyond loopback until authentication exists.
            log.warning(
                "listening on %s without authentication: anyone who reaches this address "
                "can send and read telemetry",
                server.host,
            )

        await self.store.start()
        await self.queue.start()
        # Before the processor, so that the hub has read the newest event id before any
        # batch is published to it.
        await self.live.start()
        await self.notifier.start()
        await self.processor.start()

        await self._start_http()
        for listener in self.listeners:
            await listener.start()
            log.info("protocol listener started: %s", listener.describe())
        self._retention_task = asyncio.create_task(self._retention_loop(), name="retention")
        self.started_at_s = time.monotonic()
        log.info("server started url=%s data_dir=%s", self.url, server.data_dir)

    async def _start_http(self) -> None:
        server = self.settings.server
        self._socket = bind_tcp(
            server.host,
            server.port,
            "choose another --port or stop the process using it",
        )
        self._uvicorn, self._serve_task = await start_uvicorn(
            self.app, self._socket, "fleetpulse-http"
        )

    async def wait(self) -> None:
        """Wait until the HTTP server stops (Ctrl-C or SIGTERM, which uvicorn handles)."""
        if self._serve_task is not None:
            await self._serve_task

    async def close(self) -> None:
        """Stop the listeners first so nothing new is acknowledged, then the rest."""
        for listener in self.listeners:
            await listener.close()
        # Live clients get a 1001 close frame before uvicorn drops their connections.
        await self.live.close()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._serve_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        await self.processor.close()
        await self.notifier.close()
        await self.queue.close()
        await self.store.close()
        if self._socket is not None:
            self._socket.close()
        self._lock.release()
        log.info("server stopped")

    def _health_problems(self) -> list[str]:
        problems = []
        failure = self.processor.failure
        if failure is not None:
            problems.append(f"processor stopped: {failure}")
        if self._retention_task is not None and self._retention_task.done():
            problems.append("retention task stopped; see the log for its error")
        return problems

    async def _retention_loop(self) -> None:
        keep_ms = int(self.settings.store.retention_days * 86_400_000)
        while True:
            cutoff_ms = time.time_ns() // 1_000_000 - keep_ms
            try:
                deleted = await self.store.purge(cutoff_ms)
            except Exception:
                log.exception("retention purge failed cutoff_ms=%d; retrying later", cutoff_ms)
            else:
                if deleted:
                    log.info("retention purge deleted=%d cutoff_ms=%d", deleted, cutoff_ms)
            await asyncio.sleep(RETENTION_INTERVAL_S)


def _fan_out(*callbacks: Callable[[ProcessedBatch], None]) -> Callable[[ProcessedBatch], None]:
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
