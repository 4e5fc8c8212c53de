"""One listening HTTP endpoint: a bound socket and the uvicorn server that serves it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

import uvicorn
from starlette.types import ASGIApp

from fleetpulse.httpserve import bind_tcp, start_uvicorn

log = logging.getLogger(__name__)


class HttpEndpoint:
    """Serves an ASGI app on ``host:port``. ``url`` contains the port actually bound."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        name: str,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        # (certificate file, key file) from auth.tls.tls_files; None serves plain HTTP.
        self.tls = tls
        self._socket: socket.socket | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._sigterm_loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """Return the base URL, with the port actually bound. Raises RuntimeError before start."""
        if self._socket is None:
            raise RuntimeError(f"{self.name} not started")
        host, port = self._socket.getsockname()[:2]
        url_host = f"[{host}]" if ":" in host else host
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{url_host}:{port}"

    async def start(self) -> None:
        """Bind the socket and serve. Raises OSError naming the address when it is taken.

        The caller checks the address against ``[auth]`` first, with ``auth.check_bind``.
        """
        self._socket = bind_tcp(
            self.host, self.port, "choose another --port or stop the process using it"
        )
        self._handle_sigterm()
        self._uvicorn, self._serve_task = await start_uvicorn(
            self.app, self._socket, self.name, tls=self.tls
        )

    def _handle_sigterm(self) -> None:
        """Make SIGTERM stop the server through the event loop.

        uvicorn (0.29 and later) stops on SIGTERM and then raises the signal again once
        it has restored the handler it found. Without a handler of the loop that default
        handler kills the process before ``close`` runs, so queue partitions would not
        be released and the backends not closed.
        """
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        except (NotImplementedError, RuntimeError, ValueError):
            # Not the main thread, or a loop without signal support: uvicorn's own
            # handling applies.
            return
        self._sigterm_loop = loop

    async def wait(self) -> None:
        """Wait until uvicorn stops (Ctrl-C or SIGTERM, which uvicorn handles)."""
        if self._serve_task is not None:
            await self._serve_task

    def request_stop(self) -> None:
        """Tell uvicorn to stop accepting and finish open requests."""
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True

    async def close(self) -> None:
        """Stop uvicorn, wait for it and close the socket. Safe to call twice."""
        self.request_stop()
        if self._serve_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
            self._serve_task = None
        if self._socket is not None:
            self._socket.close()
        if self._sigterm_loop is not None:
            self._sigterm_loop.remove_signal_handler(signal.SIGTERM)
            self._sigterm_loop = None
