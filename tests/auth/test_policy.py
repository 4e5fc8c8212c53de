"""The route policy against the built app, and every route rejected without the right key.

The parametrized tests walk ``ROUTE_POLICY``, and ``test_every_route_has_decision`` fails
for a route of the app that has no entry, so a new route is covered automatically once it
gets one.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.auth.policy import ROUTE_POLICY, WEBSOCKET, Access, access_for, route_methods
from fleetpulse.config import Settings
from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.service import IngestService
from fleetpulse.queue.base import open_queue
from fleetpulse.store.base import open_store
from tests.auth.conftest import AuthServer, Tokens, auth_settings, record, running_server

# Values for the path parameters of the route templates.
PATH_VALUES = {"device_id": "truck-1", "rule_id": "no-such-rule", "path": "js/main.js"}
HTTP_ROUTES = sorted(key for key in ROUTE_POLICY if key[1] != WEBSOCKET)
PROTECTED_HTTP = [key for key in HTTP_ROUTES if ROUTE_POLICY[key] is not Access.PUBLIC]


def concrete_path(template: str) -> str:
    path = template
    for name, value in PATH_VALUES.items():
        path = path.replace(f"{{{name}:path}}", value).replace(f"{{{name}}}", value)
    assert "{" not in path, f"no test value for a parameter of {template}"
    return path


def request_body(path: str, method: str) -> bytes | None:
    if method != "POST":
        return None
    if path == "/v1/telemetry":
        return json.dumps([record("truck-1")]).encode()
    return json.dumps({"id": "r1", "event_types": ["overspeed"]}).encode()


async def call(server: AuthServer, template: str, method: str, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    path = concrete_path(template)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        return await client.request(
            method, path, headers=headers, content=request_body(path, method)
        )


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"].startswith('Bearer realm="fleetpulse"')
    code = response.json()["error"]["code"]
    assert code == ("unauthorized" if status == 401 else "forbidden")


def test_every_route_has_decision(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data")
    service = IngestService(settings, open_queue(settings), open_store(settings))
    context = ApiContext(settings=settings, store=open_store(settings))
    app = create_app(context, extra_routes=list(telemetry_routes(service)))

    routes = set(route_methods(list(app.routes)))
    undecided = sorted(routes - set(ROUTE_POLICY))
    assert undecided == [], "add these routes to fleetpulse.auth.policy.ROUTE_POLICY"


def test_policy_lists_no_stale_route(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data")
    service = IngestService(settings, open_queue(settings), open_store(settings))
    context = ApiContext(settings=settings, store=open_store(settings))
    app = create_app(context, extra_routes=list(telemetry_routes(service)))

    stale = sorted(set(ROUTE_POLICY) - set(route_methods(list(app.routes))))
    assert stale == []


def test_unknown_route_needs_admin() -> None:
    assert access_for("/v1/new-thing", "GET") is Access.ADMIN
    assert access_for("/metrics", "GET") is Access.READ
    assert access_for("/metrics", "HEAD", metrics_public=True) is Access.PUBLIC


@pytest.mark.parametrize(("template", "method"), PROTECTED_HTTP)
async def test_route_without_key_401(auth_server: AuthServer, template: str, method: str) -> None:
    response = await call(auth_server, template, method, None)
    assert_refused(response, 401)


@pytest.mark.parametrize(("template", "method"), PROTECTED_HTTP)
async def test_route_with_invalid_key_401(
    auth_server: AuthServer, template: str, method: str
) -> None:
    forged = auth_server.tokens.admin[:-4] + "AAAA"
    response = await call(auth_server, template, method, forged)
    assert_refused(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(("template", "method"), PROTECTED_HTTP)
async def test_route_with_wrong_scope_403(
    auth_server: AuthServer, template: str, method: str
) -> None:
    access = ROUTE_POLICY[(template, method)]
    # A valid key without the required scope: read for admin and device routes, a device
    # token for read routes.
    if access in (Access.ADMIN, Access.DEVICE):
        weaker = auth_server.tokens.read
    else:
        weaker = auth_server.tokens.device
    response = await call(auth_server, template, method, weaker)
    assert_refused(response, 403)
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(("template", "method"), HTTP_ROUTES)
async def test_route_with_admin_key_passes(
    auth_server: AuthServer, template: str, method: str
) -> None:
    response = await call(auth_server, template, method, auth_server.tokens.admin)
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize(
    ("template", "method"), [key for key in HTTP_ROUTES if ROUTE_POLICY[key] is Access.READ]
)
async def test_read_route_with_read_key_passes(
    auth_server: AuthServer, template: str, method: str
) -> None:
    response = await call(auth_server, template, method, auth_server.tokens.read)
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize(
    ("template", "method"), [key for key in HTTP_ROUTES if ROUTE_POLICY[key] is Access.PUBLIC]
)
async def test_public_route_without_key_passes(
    auth_server: AuthServer, template: str, method: str
) -> None:
    response = await call(auth_server, template, method, None)
    assert response.status_code not in (401, 403), response.text


async def test_head_needs_key_like_get(auth_server: AuthServer) -> None:
    async with httpx.AsyncClient(base_url=auth_server.url) as client:
        response = await client.head("/v1/vehicles")
    assert response.status_code == 401


async def test_unknown_path_404_without_key(auth_server: AuthServer) -> None:
    async with httpx.AsyncClient(base_url=auth_server.url) as client:
        response = await client.get("/v1/no-such-route")
    assert response.status_code == 404


async def test_metrics_public_setting(tmp_path: Path, tokens: Tokens) -> None:
    settings = auth_settings(tmp_path / "data", auth={"metrics_public": True})
    async with running_server(settings, tokens) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            metrics = await client.get("/metrics")
            vehicles = await client.get("/v1/vehicles")
    assert metrics.status_code == 200
    assert vehicles.status_code == 401


async def test_revoked_key_rejected_after_reload(auth_server: AuthServer, tmp_path: Path) -> None:
    from fleetpulse.auth.keyfile import RELOAD_CHECK_S, key_file_path, revoke_key

    async with httpx.AsyncClient(base_url=auth_server.url) as client:
        headers = {"Authorization": f"Bearer {auth_server.tokens.read}"}
        assert (await client.get("/v1/vehicles", headers=headers)).status_code == 200

        read_key_id = auth_server.tokens.read.split("_")[1]
        revoke_key(key_file_path(auth_server.settings), read_key_id)
        await asyncio.sleep(RELOAD_CHECK_S + 0.2)

        response = await client.get("/v1/vehicles", headers=headers)
    assert response.status_code == 401


async def test_auth_off_serves_without_key(tmp_path: Path, tokens: Tokens) -> None:
    settings = auth_settings(tmp_path / "data", auth={"enabled": False})
    async with running_server(settings, tokens) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/v1/vehicles")
    assert response.status_code == 200


# --- the live WebSocket ------------------------------------------------------------------


def live_url(server: AuthServer) -> str:
    return server.url.replace("http://", "ws://") + "/v1/live"


async def closed_with(url: str, **options: object) -> tuple[int, dict[str, object]]:
    """Connect, read the error frame, and return the close code and the frame."""
    async with websockets.connect(url, **options) as socket:  # type: ignore[arg-type]
        frame = json.loads(await socket.recv())
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), 5)
        assert socket.close_code is not None
        return socket.close_code, frame


async def test_live_without_key_closes_4401(auth_server: AuthServer) -> None:
    code, frame = await closed_with(live_url(auth_server))
    assert code == 4401
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "unauthorized"


async def test_live_device_token_closes_4403(auth_server: AuthServer) -> None:
    protocols = ["fleetpulse", f"fleetpulse.bearer.{auth_server.tokens.device}"]
    code, frame = await closed_with(live_url(auth_server), subprotocols=protocols)
    assert code == 4403
    assert frame["error"]["code"] == "forbidden"


async def test_live_read_key_subprotocol_says_hello(auth_server: AuthServer) -> None:
    protocols = ["fleetpulse", f"fleetpulse.bearer.{auth_server.tokens.read}"]
    async with websockets.connect(live_url(auth_server), subprotocols=protocols) as socket:  # type: ignore[arg-type]
        hello = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert socket.subprotocol == "fleetpulse"
    assert hello["type"] == "hello"


async def test_live_read_key_header_says_hello(auth_server: AuthServer) -> None:
    headers = {"Authorization": f"Bearer {auth_server.tokens.read}"}
    async with websockets.connect(live_url(auth_server), additional_headers=headers) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), 5))
    assert hello["type"] == "hello"


async def test_live_subprotocol_selected_without_auth(tmp_path: Path, tokens: Tokens) -> None:
    settings = auth_settings(tmp_path / "data", auth={"enabled": False})
    async with running_server(settings, tokens) as server:
        async with websockets.connect(live_url(server), subprotocols=["fleetpulse"]) as socket:  # type: ignore[list-item]
            hello = json.loads(await asyncio.wait_for(socket.recv(), 5))
            assert socket.subprotocol == "fleetpulse"
    assert hello["type"] == "hello"


def test_settings_default_auth_off() -> None:
    assert Settings().auth.enabled is False
