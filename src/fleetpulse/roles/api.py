"""The API role: query API, dashboard, live WebSocket and retention."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.api.errors import add_backend_error_handlers
from fleetpulse.config import Settings
from fleetpulse.live.hub import LiveHub
from fleetpulse.notify.notifier import Notifier
from fleetpulse.queue.base import Queue
from fleetpulse.roles.retention import RetentionTask
from fleetpulse.store.base import Store

log = logging.getLogger(__name__)


class ApiRole:
    """Serves the store's data, streams live updates and runs retention.

    The API role runs retention because the purge works on the whole store and is not
    tied to any partition, and because it keeps long deletes out of the processors'
    write path. The purge is idempotent, so several API processes may all run it.

    ``live`` must be fed by the processor's after-write callback or a live bus. The
    caller opens and closes the store.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        queue: Queue | None = None,
        health_problems: Callable[[], list[str]] | None = None,
    ) -> None:
        self.live = LiveHub(settings.live, store)
        self.retention = RetentionTask(store, settings.store.retention_days)
        self._extra_problems = health_problems
        self._live_closed = False
        self.context = ApiContext(
            settings=settings,
            store=store,
            queue=queue,
            health_problems=self.health_problems,
        )

    def app(
        self, extra_routes: list[BaseRoute] | None = None, notifier: Notifier | None = None
    ) -> Starlette:
        """Build the HTTP app: the query routes plus ``extra_routes`` such as ingestion.

        Without ``notifier`` the ``/v1/notify/...`` routes respond with 503. An unreachable
        store or queue gives 503 JSON with Retry-After (``api.errors.handle_backend_error``).
        """
        app = create_app(
            self.context, extra_routes=extra_routes, live_hub=self.live, notifier=notifier
        )
        add_backend_error_handlers(app)
        return app

    async def start(self) -> None:
        """Start the live hub, then retention. The store must be open.

        The hub must start before anything publishes to it, so that it has read the
        newest stored event id first.
        """
        await self.live.start()
        self.retention.start()

    async def close_live(self) -> None:
        """Close the live clients with code 1001. Call it before the HTTP server stops."""
        if not self._live_closed:
            self._live_closed = True
            await self.live.close()

    async def close(self) -> None:
        """Stop retention and the live hub. Safe to call twice."""
        await self.retention.close()
        await self.close_live()

    def health_problems(self) -> list[str]:
        """Return the problems of this role and of ``health_problems`` given at build."""
        problems = list(self._extra_problems()) if self._extra_problems is not None else []
        if self.retention.stopped:
            problems.append("retention task stopped; see the log for its error")
        return problems
