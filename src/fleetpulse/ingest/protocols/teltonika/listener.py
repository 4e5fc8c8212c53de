"""The Teltonika TCP listener: one asyncio server, one task per device connection."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from typing import Final

from fleetpulse.auth.devices import IngestGuard
from fleetpulse.auth.tls import server_ssl_context
from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError
from fleetpulse.ingest.protocols.base import ProtocolListener, register
from fleetpulse.ingest.protocols.teltonika.framing import HEADER_BYTES
from fleetpulse.ingest.protocols.teltonika.mapping import MODELS, Convert
from fleetpulse.ingest.protocols.teltonika.ratelimit import LogBudget
from fleetpulse.ingest.protocols.teltonika.session import DeviceSession, SessionContext
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.vocabulary import RATE_LIMITED, SOURCE_TELTONIKA

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
        # With [auth] enabled only listed IMEIs connect, on loopback too.
        open_loopback = not config.allowed_imeis and self.loopback and not settings.auth.enabled
        accept_unknown = config.allow_unknown_imeis or open_loopback
        self.context = SessionContext(
            settings=settings,
            ingest=ingest,
            tables=MODELS,
            allowed_imeis=frozenset(config.allowed_imeis),
            accept_unknown_imeis=accept_unknown,
            frame_log=LogBudget(config.log_frames_per_s),
            warning_log=LogBudget(WARNINGS_PER_S),
        )
        self.guard = IngestGuard.shared(ingest, settings)
        self._ssl = server_ssl_context("teltonika", config.tls_cert_file, config.tls_key_file)
        self._server: asyncio.Server | None = None
        self._sessions: dict[asyncio.Task[None], DeviceSession] = {}
        self._per_address: Counter[str] = Counter()
        # Connections closed at once because a connection limit was reached.
        self.rejected_connections = 0

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
            self._accept,
            config.host,
            config.port,
            backlog=ACCEPT_BACKLOG,
            ssl=self._ssl,
            ssl_handshake_timeout=config.handshake_timeout_s if self._ssl else None,
        )
        log.info(
            "teltonika listener started on %s:%d tls=%s max_connections=%d",
            config.host,
            self.port,
            self._ssl is not None,
            config.max_connections,
        )
        if not self.loopback and self.context.accept_unknown_imeis:
            log.warning(
                "teltonika listener on %s accepts every IMEI: anyone who reaches it can "
                "send records; set [teltonika] allowed_imeis",
                config.host,
            )
        elif not self.context.accept_unknown_imeis and not config.allowed_imeis:
            # With [auth] enabled, allow_unknown_imeis = true stops the start (auth.bind).
            fix = (
                "list the IMEIs in [teltonika] allowed_imeis"
                if self.settings.auth.enabled
                else "list the IMEIs or set allow_unknown_imeis = true"
            )
            log.warning(
                "teltonika listener on %s rejects every device: [teltonika] allowed_imeis "
                "is empty; %s",
                config.host,
                fix,
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
        scheme = "tls" if self._ssl is not None else "tcp"
        return f"teltonika {scheme}://{config.host}:{port} (Codec 8, 8 Extended, 16; {devices})"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.context.closing:
            writer.close()
            return
        address = _peer_address(writer)
        if not self._admit_connection(address):
            self.rejected_connections += 1
            writer.close()
            return
        session = RateLimitedSession(self.context, reader, writer, self.guard)
        task = asyncio.current_task()
        assert task is not None
        self._sessions[task] = session
        self._per_address[address] += 1
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
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    def _admit_connection(self, address: str) -> bool:
        """Return whether a new connection from ``address`` stays within the limits."""
        config = self.settings.teltonika
        if len(self._sessions) >= config.max_connections:
            limit = f"max_connections {config.max_connections}"
        elif (
            config.max_connections_per_address
            and self._per_address[address] >= config.max_connections_per_address
        ):
            limit = f"max_connections_per_address {config.max_connections_per_address}"
        else:
            return True
        budget = self.context.warning_log
        if budget.allow():
            suppressed = budget.take_suppressed()
            log.warning(
                "connection rejected peer=%s: [teltonika] %s reached%s",
                address,
                limit,
                f" ({suppressed} similar lines suppressed)" if suppressed else "",
            )
        return False


class RateLimitedSession(DeviceSession):
    """A device session that leaves a packet unacknowledged while its IMEI is over the limit.

    The device sends the packet again after its acknowledgement timeout, as it does when
    the queue is full, and one dead letter per unacknowledged packet records the delay.
    """

    def __init__(
        self,
        context: SessionContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        guard: IngestGuard,
    ) -> None:
        super().__init__(context, reader, writer)
        self.guard = guard

    async def _handle_packet(
        self, imei: str, table: dict[int, tuple[str, Convert]], frame: bytes
    ) -> None:
        # The record count follows the codec id; the parent class rejects a corrupt frame.
        count = frame[HEADER_BYTES + 1] if len(frame) > HEADER_BYTES + 1 else 0
        decision = self.guard.limiter.take({imei: count})
        if decision.admitted:
            await super()._handle_packet(imei, table, frame)
            return
        self.busy = True
        try:
            message = (
                f"teltonika packet of {count} records from IMEI {imei} exceeds "
                f"{self.guard.limiter.rate_per_s:g} records/s ([ingest] "
                "device_rate_records_per_s); not acknowledged, so the device sends it again"
            )
            self._warn(
                "packet not acknowledged peer=%s imei=%s reason=%s retry_after_s=%d",
                self.peer,
                imei,
                RATE_LIMITED,
                decision.retry_after_s,
            )
            await self.context.ingest.reject_request(
                RATE_LIMITED,
                message,
                frame.hex().encode("ascii"),
                SOURCE_TELTONIKA,
                device_id=imei,
            )
        finally:
            self.busy = False


def _peer_address(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
