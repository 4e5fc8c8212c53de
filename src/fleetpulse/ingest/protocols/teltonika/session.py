"""One device connection: handshake, then AVL packets acknowledged once they are durable."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from fleetpulse.config import Settings, TeltonikaSettings
from fleetpulse.errors import FleetpulseError, QueueFullError
from fleetpulse.ingest.protocols.teltonika.answers import (
    IMEI_ACCEPTED,
    IMEI_REJECTED,
    record_count_answer,
)
from fleetpulse.ingest.protocols.teltonika.decoding import decode_packet
from fleetpulse.ingest.protocols.teltonika.errors import FrameError
from fleetpulse.ingest.protocols.teltonika.framing import StreamFramer
from fleetpulse.ingest.protocols.teltonika.mapping import Convert, to_record_in
from fleetpulse.ingest.protocols.teltonika.ratelimit import LogBudget
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.record import Record
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import Reject, validate_record
from fleetpulse.model.vocabulary import INVALID_FRAME, SOURCE_TELTONIKA

log = logging.getLogger(__name__)

# One read takes what the socket has, up to this much; the framer joins the pieces.
READ_BYTES: Final = 65_536
# How much of an unreadable stream a dead letter and a log line show.
RAW_PREVIEW_BYTES: Final = 64


@dataclass
class SessionContext:
    """State shared by every connection of one listener."""

    settings: Settings
    ingest: IngestService
    tables: dict[str, dict[int, tuple[str, Convert]]]
    allowed_imeis: frozenset[str]
    accept_unknown_imeis: bool
    frame_log: LogBudget
    warning_log: LogBudget
    closing: bool = False

    @property
    def config(self) -> TeltonikaSettings:
        return self.settings.teltonika

    def imei_allowed(self, imei: str) -> bool:
        return imei in self.allowed_imeis or self.accept_unknown_imeis


class DeviceSession:
    """Serves one TCP connection until the device closes it, it idles out, or a frame is bad.

    ``busy`` is true while a packet is being decoded and made durable, so that closing
    the listener waits for it instead of cancelling an acknowledgement half-way.
    """

    def __init__(
        self, context: SessionContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.context = context
        self.reader = reader
        self.writer = writer
        self.peer = _peer_name(writer)
        self.imei: str | None = None
        self.busy = False
        self._refused = False
        self._framer = StreamFramer(context.config.max_frame_bytes)

    async def run(self) -> None:
        try:
            await self._serve()
        except FrameError as exc:
            await self._refuse_stream(exc)
        except TimeoutError:
            log.info("closing idle connection peer=%s imei=%s", self.peer, self.imei)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("connection lost peer=%s imei=%s: %r", self.peer, self.imei, exc)
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    async def _serve(self) -> None:
        config = self.context.config
        imei = await self._handshake(config.handshake_timeout_s)
        if imei is None:
            return
        table = self.context.tables[config.device_models.get(imei, config.default_model)]
        while not self.context.closing:
            data = await asyncio.wait_for(self.reader.read(READ_BYTES), config.idle_timeout_s)
            if not data:
                log.debug("device closed the connection peer=%s imei=%s", self.peer, imei)
                return
            self._framer.feed(data)
            while (frame := self._framer.next_packet()) is not None:
                await self._handle_packet(imei, table, frame)

    async def _handshake(self, timeout_s: float) -> str | None:
        async with asyncio.timeout(timeout_s):
            while True:
                try:
                    imei = self._framer.next_imei()
                except FrameError:
                    # A malformed IMEI gets the same reject byte as an unknown one, so the
                    # device receives a reply before the connection closes.
                    self.writer.write(IMEI_REJECTED)
                    with contextlib.suppress(ConnectionError):
                        await self.writer.drain()
                    raise
                if imei is not None:
                    break
                data = await self.reader.read(READ_BYTES)
                if not data:
                    log.debug("connection closed before the IMEI peer=%s", self.peer)
                    return None
                self._framer.feed(data)
        if not self.context.imei_allowed(imei):
            self._warn(
                "rejected unknown IMEI peer=%s imei=%s: add it to [teltonika] allowed_imeis",
                self.peer,
                imei,
            )
            self.writer.write(IMEI_REJECTED)
            await self.writer.drain()
            return None
        self.imei = imei
        self.writer.write(IMEI_ACCEPTED)
        await self.writer.drain()
        log.debug("device connected peer=%s imei=%s", self.peer, imei)
        return imei

    async def _handle_packet(
        self, imei: str, table: dict[int, tuple[str, Convert]], frame: bytes
    ) -> None:
        self.busy = True
        try:
            self._log_frame(imei, frame)
            try:
                packet = decode_packet(frame)
            except FrameError as exc:
                await self._refuse_frame(exc, frame)
                raise
            received_at_ms = now_ms()
            records: list[Record] = []
            rejects: list[Reject] = []
            settings = self.context.settings
            for index, avl in enumerate(packet.records):
                result = validate_record(
                    to_record_in(imei, avl, table),
                    received_at_ms,
                    settings,
                    index=index,
                    source=SOURCE_TELTONIKA,
                )
                if isinstance(result, Record):
                    records.append(result)
                else:
                    rejects.append(result)
            try:
                await self.context.ingest.ingest_records(
                    records, rejects, SOURCE_TELTONIKA, received_at_ms=received_at_ms
                )
            except QueueFullError:
                # No answer: the device sends the packet again after its ack timeout.
                # The ingest service logs the full queue, throttled.
                log.debug("queue full, not acknowledging imei=%s records=%d", imei, len(records))
                return
            except FleetpulseError as exc:
                if not exc.retriable:
                    raise
                # A full disk, the in-flight limit or a queue backend outage: the same
                # packet can succeed later, so keep the connection and withhold the ack.
                self._warn(
                    "packet not acknowledged, the device will resend it imei=%s records=%d: %s",
                    imei,
                    len(records),
                    exc,
                )
                return
            # Rejected records are durable as dead letters, and a device resends whatever
            # the answer leaves out, so the answer counts every record of the packet.
            self.writer.write(record_count_answer(len(packet.records)))
            await self.writer.drain()
        finally:
            self.busy = False

    async def _refuse_frame(self, error: FrameError, frame: bytes) -> None:
        self._refused = True
        self._warn(
            "refused packet, closing connection peer=%s imei=%s problem=%s: %s",
            self.peer,
            self.imei,
            error.problem,
            error.message,
        )
        await self.context.ingest.reject_request(
            INVALID_FRAME,
            f"teltonika packet from IMEI {self.imei}: {error.message}",
            frame.hex().encode("ascii"),
            SOURCE_TELTONIKA,
            device_id=self.imei,
        )

    async def _refuse_stream(self, error: FrameError) -> None:
        if self._refused:
            return  # the packet was already refused and dead-lettered whole
        preview = self._framer.preview(RAW_PREVIEW_BYTES)
        self._warn(
            "refused stream, closing connection peer=%s imei=%s problem=%s: %s",
            self.peer,
            self.imei,
            error.problem,
            error.message,
        )
        if self.imei is not None:
            await self.context.ingest.reject_request(
                INVALID_FRAME,
                f"teltonika stream from IMEI {self.imei}: {error.message}",
                preview.hex().encode("ascii"),
                SOURCE_TELTONIKA,
                device_id=self.imei,
            )

    def _warn(self, message: str, *args: object) -> None:
        budget = self.context.warning_log
        if not budget.allow():
            return
        suppressed = budget.take_suppressed()
        if suppressed:
            message += " (%d similar lines suppressed)"
            args = (*args, suppressed)
        log.warning(message, *args)

    def _log_frame(self, imei: str, frame: bytes) -> None:
        if not self.context.config.log_frames or not self.context.frame_log.allow():
            return
        log.info("frame imei=%s bytes=%d hex=%s", imei, len(frame), frame.hex())


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
