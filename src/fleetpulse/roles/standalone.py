"""One role in its own process: ``fleetpulse ingest``, ``fleetpulse process``, ``fleetpulse api``.

Every process of a deployment reads the same settings file. They share the queue
(NATS JetStream) and the store (PostgreSQL), and the process and API roles share the
live bus (a NATS subject). The embedded SQLite backends are rejected, because each
SQLite file belongs to the one process that holds the data folder's lock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Literal

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from fleetpulse import metrics
from fleetpulse.api.context import ApiContext
from fleetpulse.api.errors import (
    ApiError,
    add_backend_error_handlers,
    handle_api_error,
    handle_http_exception,
)
from fleetpulse.api.system import system_routes
from fleetpulse.auth.bind import check_bind
from fleetpulse.auth.middleware import auth_middleware
from fleetpulse.auth.tls import tls_files
from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError
from fleetpulse.ingest.http import telemetry_fast_path
from fleetpulse.live.bus import LiveBus, bus_kind, open_live_bus
from fleetpulse.queue.base import Queue, open_queue
from fleetpulse.roles.api import ApiRole
from fleetpulse.roles.http import HttpEndpoint
from fleetpulse.roles.ingest import IngestRole
from fleetpulse.roles.process import ProcessRole
from fleetpulse.store.base import Store, open_store

log = logging.getLogger(__name__)

RoleName = Literal["ingest", "process", "api"]

# Ports of the roles that do not use [server] port, which stays the ingest port, so
# that devices and senders set up for `fleetpulse run` need no change.
API_PORT = 8081
PROCESS_PORT = 8082


def check_role_settings(settings: Settings, role: RoleName) -> None:
    """Raise ConfigError unless the backends can be shared between processes."""
    if role in ("ingest", "process") and settings.queue.backend == "sqlite":
        raise ConfigError(
            f"fleetpulse {role} needs a queue that several processes share, but "
            '[queue] backend is "sqlite", whose file only one process may open; set '
            '[queue] backend = "jetstream" or use `fleetpulse run`'
        )
    if settings.store.backend == "sqlite":
        raise ConfigError(
            f"fleetpulse {role} needs a store that several processes share, but "
            '[store] backend is "sqlite", whose file only one process may open; set '
            '[store] backend = "postgres" or use `fleetpulse run`'
        )
    if role in ("process", "api") and bus_kind(settings) != "nats":
        raise ConfigError(
            f'fleetpulse {role} needs [live] bus "nats" (or "auto" with a JetStream queue), '
            'because with "local" the processor\'s updates never reach the API process'
        )


class RoleServer:
    """Runs one role with the backends it needs and its own HTTP endpoint.

    - ingest: ``POST /v1/telemetry``, the protocol listeners, ``/healthz``, ``/metrics``.
    - process: the processor and notifier, and ``/healthz`` and ``/metrics``.
    - api: the query API, dashboard, ``/v1/live`` and retention.
    """

    def __init__(self, settings: Settings, role: RoleName) -> None:
        check_role_settings(settings, role)
        self.settings = settings
        self.role = role
        self.store: Store = open_store(settings)
        self.queue: Queue | None = open_queue(settings) if role != "api" else None
        self.bus: LiveBus | None = None
        self.ingest_role: IngestRole | None = None
        self.process_role: ProcessRole | None = None
        self.api_role: ApiRole | None = None
        self._started_at_s = 0.0

        app = self._build(settings)
        server = settings.server
        tls = tls_files("server", server.tls_cert_file, server.tls_key_file)
        self.http = HttpEndpoint(app, server.host, server.port, f"fleetpulse-{role}-http", tls)

    def _build(self, settings: Settings) -> Starlette:
        name = f"fleetpulse-{self.role}"
        if self.role == "api":
            self.bus = open_live_bus(settings, name)
            self.api_role = ApiRole(settings, self.store)
            self.bus.subscribe(self.api_role.live.publish)
            return self.api_role.app()

        assert self.queue is not None
        if self.role == "ingest":
            self.ingest_role = IngestRole(settings, self.queue, self.store)
            context = ApiContext(settings=settings, store=self.store, queue=self.queue)
            return _small_app([*self.ingest_role.routes(), *system_routes(context)], settings)

        self.bus = open_live_bus(settings, name)
        self.process_role = ProcessRole(settings, self.queue, self.store, self.bus.publish)
        context = ApiContext(
            settings=settings,
            store=self.store,
            queue=self.queue,
            health_problems=self.process_role.health_problems,
        )
        return _small_app(system_routes(context), settings)

    @property
    def url(self) -> str:
        """Return the base URL of the role's HTTP endpoint, with the port actually bound."""
        return self.http.url

    @property
    def listeners(self) -> list[str]:
        """Return the addresses of the protocol listeners (ingest role only)."""
        if self.ingest_role is None:
            return []
        return [listener.describe() for listener in self.ingest_role.listeners]

    async def start(self) -> None:
        """Open the backends, start the role, then serve HTTP."""
        # Raises ConfigError before anything listens beyond loopback without keys.
        check_bind(self.settings)
        await self.store.start()
        if self.queue is not None:
            await self.queue.start()
        if self.api_role is not None:
            # The hub before the bus, so that it has the newest event id before updates.
            await self.api_role.start()
        if self.bus is not None:
            await self.bus.start()
        if self.process_role is not None:
            await self.process_role.start()
        await self.http.start()
        if self.ingest_role is not None:
            await self.ingest_role.start()
        self._started_at_s = time.monotonic()
        log.info(
            "fleetpulse %s started: url=%s %s%s",
            self.role,
            self.url,
            describe_backends(self.settings, self.role),
            "".join(f" listener={address!r}" for address in self.listeners),
        )

    async def wait(self) -> None:
        """Wait until the HTTP server stops (Ctrl-C or SIGTERM, which uvicorn handles)."""
        await self.http.wait()

    async def close(self) -> None:
        """Stop intake first, then processing, then the backends, and log a summary."""
        if self.ingest_role is not None:
            await self.ingest_role.close()
        if self.api_role is not None:
            await self.api_role.close_live()
        await self.http.close()
        if self.api_role is not None:
            await self.api_role.close()
        if self.process_role is not None:
            await self.process_role.close()
        if self.bus is not None:
            await self.bus.close()
        if self.queue is not None:
            await self.queue.close()
        await self.store.close()
        uptime_s = time.monotonic() - self._started_at_s if self._started_at_s else 0.0
        log.info("fleetpulse %s stopped: uptime_s=%.1f %s", self.role, uptime_s, self.summary())

    def summary(self) -> str:
        """Return this process's totals from its metrics, for the stop line."""
        if self.role == "ingest":
            return (
                f"records_received={_total(metrics.RECORDS_RECEIVED):.0f} "
                f"records_accepted={_total(metrics.RECORDS_ACCEPTED):.0f} "
                f"records_rejected={_total(metrics.RECORDS_REJECTED):.0f} "
                f"queue_full={_total(metrics.QUEUE_FULL):.0f}"
            )
        if self.role == "process":
            return (
                f"records_processed={_total(metrics.RECORDS_PROCESSED):.0f} "
                f"records_duplicate={_total(metrics.RECORDS_DUPLICATE):.0f} "
                f"events={_total(metrics.EVENTS):.0f}"
            )
        assert self.api_role is not None
        return f"live_clients_left={self.api_role.live.session_count}"


def describe_backends(settings: Settings, role: RoleName) -> str:
    """Return the role's backends and their addresses, without user names or passwords."""
    parts = []
    if role != "api":
        parts.append(f"queue={settings.queue.backend}")
    parts.append(f"store={settings.store.backend}")
    if settings.store.backend == "postgres":
        from fleetpulse.store._pg_connect import describe_dsn

        parts.append(f"postgres={describe_dsn(settings.postgres.dsn)}")
    if settings.queue.backend == "jetstream" or bus_kind(settings) == "nats":
        from fleetpulse.queue.jetstream import redact_url

        parts.append(f"nats={redact_url(settings.nats.url)}")
    if role != "ingest":
        parts.append(f"live_bus={bus_kind(settings)} subject={settings.live.subject}")
    return " ".join(parts)


def _small_app(routes: Iterable[BaseRoute], settings: Settings) -> Starlette:
    route_list = list(routes)
    app = Starlette(
        routes=route_list,
        # The telemetry fast path, when the ingest routes are present, skips the router.
        middleware=[auth_middleware(settings), *telemetry_fast_path(route_list)],
        exception_handlers={
            ApiError: handle_api_error,
            HTTPException: handle_http_exception,
        },
    )
    add_backend_error_handlers(app)
    return app


def _total(counter: Counter) -> float:
    """Return the sum of a counter over all its labels."""
    total = 0.0
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                total += sample.value
    return total
