"""A client that never reads: the server's buffers for it stay bounded and it is closed."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from tests.live.conftest import drive, now_ms

MAX_BUFFERED_EVENTS = 1000
# A small receive buffer makes the server's sends block after little data.
CLIENT_RCVBUF_BYTES = 4096


def open_silent_client(ws_url: str) -> socket.socket:
    """Complete a WebSocket handshake on a blocking socket that is never read again."""
    parts = urlsplit(ws_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF_BYTES)
    sock.settimeout(10.0)
    sock.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def test_silent_client_bounded_and_closed(live_server: Any) -> None:
    live = await live_server(max_buffered_events=MAX_BUFFERED_EVENTS)
    hub = live.server.live
    sock = await asyncio.to_thread(open_silent_client, live.ws_url("interval_s=0.1"))
    try:
        start_ms = now_ms() - 3_000_000
        max_events_seen = 0
        max_views_seen = 0
        vehicles = 300
        for round_ in range(40):
            if hub.session_count == 0:
                break
            # Many vehicles make large vehicle frames that fill the socket buffers, and
            # ignition changes make events that pile up once sends block.
            records = [drive(f"v{v}", 1, start_ms + round_ * 1000)[0] for v in range(vehicles)]
            for record in records:
                record["ignition"] = round_ % 2 == 0
            await live.send(records)
            for session in list(hub._sessions):
                max_events_seen = max(max_events_seen, len(session.events))
                max_views_seen = max(max_views_seen, len(session.views))
            await asyncio.sleep(0.1)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while hub.session_count and loop.time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        sock.close()

    assert max_events_seen <= MAX_BUFFERED_EVENTS
    assert max_views_seen <= vehicles
    assert hub.session_count == 0
