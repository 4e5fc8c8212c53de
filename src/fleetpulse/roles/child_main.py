"""The processor child of ``fleetpulse run``: ``python -m fleetpulse.roles.child_main``.

The parent (``roles/child.py``) starts it with one end of a socket pair as
``--channel-fd``. The child reads the settings from the channel, takes
``processor.lock`` in the data folder, opens ``queue.db`` and ``store.db`` and runs the
``Processor``: it fetches what the parent published, writes the store and acks the
queue, and reports each stored batch, each ack, its metrics and its health back over
the channel. It exits when the parent sends Stop, when the channel reaches its end, on
SIGTERM, and, through ``PR_SET_PDEATHSIG``, when the parent dies. SIGINT is ignored, so
a Ctrl-C in a terminal, which reaches the whole process group, leaves the stop to the
parent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import msgspec

from fleetpulse import metrics
from fleetpulse.config import Settings
from fleetpulse.errors import FleetpulseError
from fleetpulse.live.bus import LiveUpdate
from fleetpulse.process.engine import Processor
from fleetpulse.queue.base import Delivery
from fleetpulse.queue.sqlite import SqliteQueue
from fleetpulse.roles._child_protocol import (
    Acked,
    Acking,
    ChannelClosed,
    ChildFrame,
    Configure,
    Failed,
    Health,
    Metrics,
    MetricsRequest,
    Published,
    Started,
    Stop,
    Stored,
    encode_frame,
    read_parent_frame,
)
from fleetpulse.store.base import ProcessedBatch
from fleetpulse.store.sqlite import SqliteStore

# Named explicitly, because `python -m` runs this module as __main__.
log = logging.getLogger("fleetpulse.roles.child_main")

LOCK_FILE = "processor.lock"
# How long a new child waits for the previous one to release processor.lock. A child
# whose parent was killed dies with it, so the wait is normally a few milliseconds.
LOCK_WAIT_S = 30.0
LOCK_POLL_S = 0.05
# How often the child checks its processor's health and pushes a metrics snapshot.
REPORT_INTERVAL_S = 1.0
# prctl(2) option number from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


class ProcessorLock:
    """An exclusive flock on ``data_dir/processor.lock``: one consuming child per folder.

    A parent killed with SIGKILL is restarted with a new child while the old one may
    still be finishing. The new child waits here until the old one has exited.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self._handle: IO[str] | None = None

    async def acquire(self, timeout_s: float = LOCK_WAIT_S) -> None:
        """Take the lock, waiting up to ``timeout_s``. Raises TimeoutError naming the holder."""
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        deadline = time.monotonic() + timeout_s
        logged = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                if time.monotonic() >= deadline:
                    handle.close()
                    raise TimeoutError(
                        f"{self.path} is still held by pid {holder} after {timeout_s:g} s; "
                        "stop that process, which is an earlier processor of this data folder"
                    ) from None
                if not logged:
                    log.info(
                        "waiting for an earlier processor to exit: lock=%s pid=%s",
                        self.path,
                        holder,
                    )
                    logged = True
            await asyncio.sleep(LOCK_POLL_S)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Drop the lock. Safe to call twice."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class ChildChannel:
    """The child's end of the channel: sends frames without waiting."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self._writer = writer

    def send(self, frame: ChildFrame) -> None:
        """Queue a frame for sending. A closed channel drops it; the parent is gone then."""
        if not self._writer.is_closing():
            self._writer.write(encode_frame(frame))

    async def flush(self) -> None:
        """Wait until the queued frames are handed to the socket."""
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    def close(self) -> None:
        """Close the socket."""
        self._writer.close()


def set_parent_death_signal(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, and exit if it is gone.

    The kill loses no record, because the child acks the queue only after the store
    write. Without the signal, a child of a parent killed with SIGKILL keeps consuming
    until it reads the end of the channel, and ``processor.lock`` makes the child
    of a restarted parent wait until then.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno=%s", error)
    # The parent may have died before the prctl call took effect.
    if os.getppid() != parent_pid:
        sys.exit(1)


class ReportingQueue(SqliteQueue):
    """The child's queue: announces each ack's rows on the channel before committing it."""

    def __init__(self, settings: Settings, channel: ChildChannel) -> None:
        super().__init__(settings)
        self._channel = channel

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            offsets = [delivery.offset for delivery in deliveries]
            records = sum(len(delivery.records) for delivery in deliveries)
            self._channel.send(Acking(offsets, records))
        await super().ack(deliveries)


class ChildRunner:
    """Runs the processor of the child on the settings that the parent sent."""

    def __init__(self, channel: ChildChannel, settings: Settings) -> None:
        self._channel = channel
        self._settings = settings
        self._queue = ReportingQueue(settings, channel)
        self._store = SqliteStore(settings)
        self._lock = ProcessorLock(settings.server.data_dir)
        self._processor = Processor(settings, self._queue, self._store, on_write=self._send_stored)
        self._stopping = asyncio.Event()
        self._reported_failure: str | None = None

    async def run(self) -> int:
        """Start, serve frames until stopped, then close. Returns the exit code."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        try:
            if not await self._start():
                return 1
            reporter = asyncio.create_task(self._report_loop(), name="fleetpulse-child-report")
            try:
                await self._serve_frames()
            finally:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            return 0
        finally:
            await self._close()

    async def _start(self) -> bool:
        try:
            await self._lock.acquire()
            await self._store.start()
            await self._queue.start()
        except (FleetpulseError, OSError, TimeoutError) as exc:
            log.error("processor child could not start: pid=%s error=%s", os.getpid(), exc)
            self._channel.send(Failed(str(exc)))
            await self._channel.flush()
            return False
        self._queue.set_ack_listener(self._send_acked)
        await self._processor.start()
        self._channel.send(Started(os.getpid()))
        log.info("processor child started: pid=%s parent_pid=%s", os.getpid(), os.getppid())
        return True

    async def _serve_frames(self) -> None:
        stop_wait = asyncio.create_task(self._stopping.wait())
        try:
            while True:
                read = asyncio.create_task(read_parent_frame(self._channel.reader))
                done, _ = await asyncio.wait({read, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    read.cancel()
                    return
                try:
                    frame = read.result()
                except ChannelClosed as exc:
                    log.warning("processor child: channel to the parent closed, stopping: %s", exc)
                    return
                if isinstance(frame, Published):
                    self._queue.notify_published()
                elif isinstance(frame, MetricsRequest):
                    self._channel.send(Metrics(frame.request_id, metrics.snapshot_families()))
                elif isinstance(frame, Stop):
                    log.info("processor child stopping on request: pid=%s", os.getpid())
                    return
                else:
                    log.warning("processor child ignored frame: type=%s", type(frame).__name__)
        finally:
            stop_wait.cancel()

    async def _report_loop(self) -> None:
        while True:
            failure = self._processor.failure
            if failure != self._reported_failure:
                self._reported_failure = failure
                self._channel.send(Health(failure))
            self._channel.send(Metrics(0, metrics.snapshot_families()))
            await asyncio.sleep(REPORT_INTERVAL_S)

    async def _close(self) -> None:
        await self._processor.close()
        with contextlib.suppress(FleetpulseError):
            # This process never publishes, so only a fresh count gives the rows left over.
            await self._queue.recount_depth()
        await self._queue.close()
        await self._store.close()
        self._lock.release()
        await self._channel.flush()
        self._channel.close()
        log.info("processor child stopped: pid=%s", os.getpid())

    def _send_stored(self, batch: ProcessedBatch) -> None:
        if batch.vehicles or batch.events:
            views = [snapshot.view for snapshot in batch.vehicles]
            self._channel.send(Stored(LiveUpdate(views=views, events=batch.events)))

    def _send_acked(self, records: int) -> None:
        self._channel.send(Acked(records))

    def _on_sigterm(self) -> None:
        log.info("processor child got SIGTERM, stopping: pid=%s", os.getpid())
        self._stopping.set()


async def serve(channel_fd: int) -> int:
    """Read the settings from the channel and run the child. Returns the exit code."""
    sock = socket.socket(fileno=channel_fd)
    reader, writer = await asyncio.open_connection(sock=sock)
    channel = ChildChannel(reader, writer)
    try:
        frame = await read_parent_frame(reader)
        if not isinstance(frame, Configure):
            raise ChannelClosed(f"expected Configure first, got {type(frame).__name__}")
        settings = msgspec.json.decode(frame.settings_json, type=Settings)
    except (ChannelClosed, msgspec.DecodeError) as exc:
        # Logging is not configured yet: the settings carry the level.
        print(
            f"fleetpulse processor child: no valid settings from the parent: {exc}", file=sys.stderr
        )
        channel.close()
        return 2

    from fleetpulse.cli.main import configure_logging

    configure_logging(settings.server.log_level)
    return await ChildRunner(channel, settings).run()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child process."""
    # Ignored first: a Ctrl-C in the terminal reaches this process too, and the parent
    # stops it in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(prog="python -m fleetpulse.roles.child_main")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    set_parent_death_signal(args.parent_pid)

    from fleetpulse.cli.server_options import run_event_loop

    exit_code = 0

    async def run() -> None:
        nonlocal exit_code
        exit_code = await serve(args.channel_fd)

    run_event_loop(run())
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
