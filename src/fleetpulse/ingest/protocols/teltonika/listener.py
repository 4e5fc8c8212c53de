"""The Teltonika TCP listener: one asyncio server, one task per device connection."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Final

from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError
from fleetpulse.ingest.protocols.base import ProtocolListener, register
from fleetpulse.ingest.protocols.teltonika.mapping import MODELS
from fleetpulse.ingest.protocols.teltonika.ratelimit import LogBudget
from fleetpulse.ingest.protocols.teltonika.session import DeviceSession, SessionContext
from fleetpulse.ingest.service import IngestService

log = logging.getLogger(__name__)

# How long close() waits for packets being made durable before it cancels them.
CLOSE_GRACE_S: Final = 10.0
# Pending connections the kernel queues: a fleet reconnects at once after a restart.
ACCEPT_BACKLOG: Final = 1024
# Warnings about refused IMEIs and packets per second at most, since any peer can cause them.
WARNINGS_PER_S: Final = 5


@register
class TeltonikaListener(ProtocolListener):
    """Accepts Teltonika devices on ``[teltonika] host:port`` (Codec 8, 8 Extended, 16).

    Raises ConfigError on construction when a device model in the settings has no
    IO element table.
    """

    name = "teltonika"

    def __init__(self, settings: Settings, ingest: IngestService) -> None:
        super().__init__(settings, ingest)
        config = settings.teltonika
        for imei, model in {**config.device_models, "default_model": config.default_model}.items():
            if model not in MODELS:
                raise ConfigError(
                    f"[teltonika] device model {model!r} for {imei} is unknown; "
                    f"use one of: {', '.join(sorted(MODELS))}"
                )
        self.loopback = _is_loopback(config.host)
        accept_unknown = config.allow_unknown_imeis or (not config.allowed_imeis and self.loopback)
        self.context = SessionContext(
            settings=settings,
            ingest=ingest,
            tables=MODELS,
            allowed_imeis=frozenset(config.allowed_imeis),
            accept_unknown_imeis=accept_unknown,
            frame_log=LogBudget(config.log_frames_per_s),
            warning_log=LogBudget(WARNINGS_PER_S),
        )
        self._server: asyncio.Server | None = None
        self._sessions: dict[asyncio.Task[None], DeviceSession] = {}

    @property
    def port(self) -> int:
        """Return the bound TCP port, which differs from the setting when that is 0."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("teltonika listener not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        config = self.settings.teltonika
        self._server = await asyncio.start_server(
            self._accept, config.host, config.port, backlog=ACCEPT_BACKLOG
        )
        log.info("teltonika listener started on %s:%d", config.host, self.port)
        if not self.loopback and self.context.accept_unknown_imeis:
            log.warning(
                "teltonika listener on %s accepts every IMEI: anyone who reaches it can "
                "send records; set [teltonika] allowed_imeis",
                config.host,
            )
        elif not self.context.accept_unknown_imeis and not config.allowed_imeis:
            log.warning(
                "teltonika listener on %s rejects every device: [teltonika] allowed_imeis "
                "is empty; list the IMEIs or set allow_unknown_imeis = true",
                config.host,
            )

    async def close(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        self.context.closing = True
        for task, session in self._sessions.items():
            if not session.busy:
                task.cancel()
        if self._sessions:
            _, pending = await asyncio.wait(set(self._sessions), timeout=CLOSE_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()
        log.info("teltonika listener stopped")

    def describe(self) -> str:
        config = self.settings.teltonika
        if self.context.accept_unknown_imeis:
            devices = "any IMEI"
        else:
            devices = f"{len(config.allowed_imeis)} allowed IMEIs"
        port = self.port if self._server is not None else config.port
        return f"teltonika tcp://{config.host}:{port} (Codec 8, 8 Extended, 16; {devices})"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.context.closing:
            writer.close()
            return
        session = DeviceSession(self.context, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = session
        try:
            await session.run()
        except asyncio.CancelledError:
            # close() cancels idle connections; ending quietly keeps asyncio's stream
            # callback from logging the cancellation as an error.
            log.debug("connection cancelled by close peer=%s imei=%s", session.peer, session.imei)
        except Exception:
            # A bug must not pass silently, but it ends only this connection.
            log.exception("teltonika connection failed peer=%s imei=%s", session.peer, session.imei)
        finally:
            del self._sessions[task]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
