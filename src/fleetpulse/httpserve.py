"""Listening sockets and uvicorn servers, shared by the API server and the OsmAnd listener."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp

from fleetpulse.auth.redact import install_on_loggers

# Devices keep connections open between batches; 75 s outlasts most NAT timeouts of
# mobile networks without holding dead sockets forever.
KEEP_ALIVE_S = 75
# Pending connections the kernel queues before accept; bursts of reconnecting devices
# after an outage arrive together.
LISTEN_BACKLOG = 2048


def bind_tcp(host: str, port: int, hint: str) -> socket.socket:
    """Bind a non-blocking listening socket. Raises OSError naming the address and ``hint``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY on Linux. Without it, a response written
    # as headers then body waits for the client's delayed ACK: about 40 ms per request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from exc
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def start_uvicorn(
    app: ASGIApp,
    sock: socket.socket,
    name: str,
    interface: str = "auto",
    *,
    tls: tuple[str, str] | None = None,
    limit_concurrency: int | None = None,
) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve ``app`` on ``sock`` in a task and return once uvicorn accepts connections.

    ``tls`` is (certificate file, key file) in PEM, as ``auth.tls.tls_files`` returns.
    Beyond ``limit_concurrency`` connections and requests in progress uvicorn responds
    with 503. The access log stays off, and uvicorn's loggers get the redacting filter,
    because a query string or a handshake header may carry a token.
    """
    install_on_loggers()
    config = uvicorn.Config(
        app,
        interface=interface,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=KEEP_ALIVE_S,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        limit_concurrency=limit_concurrency,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} stopped while starting")
        await asyncio.sleep(0.01)
    return server, task
