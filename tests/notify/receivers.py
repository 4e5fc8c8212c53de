"""Real receivers on 127.0.0.1 for the notification tests: an HTTP server and an SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# Maximum request head the receiver reads. The notifier's requests are far smaller.
MAX_HEAD_BYTES = 65_536


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records every request and responds ``fail_status`` to the first ``fail_first``."""

    fail_first: int = 0
    fail_status: int = 503
    requests: list[ReceivedRequest] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/hook"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.requests) < count:
                await asyncio.sleep(0.01)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if len(head) > MAX_HEAD_BYTES:
                    break
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(ReceivedRequest(method, path, headers, body))
                status = self.fail_status if len(self.requests) <= self.fail_first else 200
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode("latin-1"))
                await writer.drain()
        writer.close()


@dataclass
class SmtpHandler:
    """Keeps every message and replies ``fail_reply`` to the DATA of the first ``fail_first``."""

    fail_first: int = 0
    fail_reply: str = "451 4.3.0 try again later"
    messages: list[Message] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    attempts: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return self.fail_reply
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        self.envelopes.append(envelope)
        return "250 OK"


@dataclass
class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1, in the test's own event loop."""

    handler: SmtpHandler = field(default_factory=SmtpHandler)
    # (user, password) required to log in; None accepts mail without a login.
    login: tuple[str, str] | None = None
    logins: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._protocol, "127.0.0.1", 0)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.handler.messages) < count:
                await asyncio.sleep(0.01)

    def _protocol(self) -> SMTP:
        if self.login is None:
            return SMTP(self.handler, hostname="localhost")
        # The test server has no certificate, so the login runs over plain TCP, which
        # aiosmtpd warns about.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(
                self.handler,
                hostname="localhost",
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=False,
            )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.login is not None
        assert isinstance(data, LoginPassword)
        user, password = data.login.decode(), data.password.decode()
        self.logins.append(user)
        # handled=False makes the server reply 535 to a failed login itself.
        return AuthResult(success=(user, password) == self.login, handled=False)
