"""A real HTTP server with authentication on: SQLite queue and store, uvicorn on loopback.

``auth_server`` builds the same app as ``fleetpulse run`` (query API, ingest route, live
stream) on a free port of 127.0.0.1, with a key file holding one key of each kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import uvicorn
from starlette.applications import Starlette

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.auth.keyfile import create_key
from fleetpulse.config import Settings
from fleetpulse.httpserve import bind_tcp, start_uvicorn
from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.service import IngestService
from fleetpulse.live.hub import LiveHub
from fleetpulse.queue.base import Queue, open_queue
from fleetpulse.store.base import Store, open_store

KEY_FILE = "keys.json"


@dataclass
class Tokens:
    """One token of each kind, as `fleetpulse keys create` prints them."""

    read: str
    admin: str
    device: str  # covers truck-1 only
    gateway: str  # covers gw-1 and gw-2
    device_key_id: str


@dataclass
class AuthServer:
    """A running server: its URL, tokens, settings, app, queue and store."""

    url: str
    tokens: Tokens
    settings: Settings
    app: Starlette
    queue: Queue
    store: Store
    service: IngestService


def auth_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    """Settings with auth on, the data folder ``data_dir`` and extra sections."""
    raw: dict[str, Any] = {
        "server": {"data_dir": str(data_dir)},
        "auth": {"enabled": True},
        "store": {"synchronous": "normal"},
        "queue": {"synchronous": "normal"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return msgspec.convert(raw, Settings)


def make_tokens(key_file: Path) -> Tokens:
    """Create one key of each kind in ``key_file`` and return their tokens."""
    _, read = create_key(key_file, "read", name="reader")
    _, admin = create_key(key_file, "admin", name="operator")
    device_key, device = create_key(key_file, "device", frozenset({"truck-1"}))
    _, gateway = create_key(key_file, "device", frozenset({"gw-1", "gw-2"}), name="gateway")
    return Tokens(read, admin, device, gateway, device_key.key_id)


def record(device_id: str, seconds_ago: int = 10, **fields: Any) -> dict[str, Any]:
    """A valid record of ``device_id`` timed ``seconds_ago``."""
    ts = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    return {
        "device_id": device_id,
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "lat": 48.137,
        "lon": 11.575,
        "speed_kmh": 30.0,
        **fields,
    }


@contextlib.asynccontextmanager
async def serve(app: Any, tls: tuple[str, str] | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 and yield its base URL."""
    sock = bind_tcp("127.0.0.1", 0, "test")
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None
    try:
        server, task = await start_uvicorn(app, sock, "test-http", tls=tls)
        port = sock.getsockname()[1]
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        if server is not None and task is not None:
            server.should_exit = True
            await task
        sock.close()


@contextlib.asynccontextmanager
async def running_server(settings: Settings, tokens: Tokens) -> AsyncIterator[AuthServer]:
    """Start the backends, a live hub and uvicorn for ``settings``; stop them afterwards."""
    queue = open_queue(settings)
    store = open_store(settings)
    await store.start()
    await queue.start()
    hub = LiveHub(settings.live, store)
    await hub.start()
    service = IngestService(settings, queue, store)
    context = ApiContext(settings=settings, store=store, queue=queue)
    app = create_app(context, extra_routes=list(telemetry_routes(service)), live_hub=hub)
    try:
        async with serve(app) as url:
            yield AuthServer(url, tokens, settings, app, queue, store, service)
    finally:
        await hub.close()
        await queue.close()
        await store.close()


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return make_tokens(tmp_path / "data" / KEY_FILE)


@pytest.fixture
async def auth_server(tmp_path: Path, tokens: Tokens) -> AsyncIterator[AuthServer]:
    settings = auth_settings(tmp_path / "data")
    async with running_server(settings, tokens) as server:
        yield server


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[str, str]:
    """Make a self-signed certificate for ``host`` with the openssl command; return the files."""
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=IP:{host}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)
