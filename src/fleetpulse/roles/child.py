"""The process role in a child OS process, so that processing gets a core of its own.

``fleetpulse run`` serves ingest and the API in one process. Under one GIL, HTTP,
decoding, processing and both SQLite writers share one core. ``ChildProcessRole`` runs
the processor in a child process (``roles/child_main.py``) on the same ``queue.db`` and
``store.db``: the parent publishes, and the child fetches, writes the store and acks.
The two talk over a socket pair in length-prefixed msgpack frames
(``roles/_child_protocol.py``):

- The parent wakes the child's fetch with a Published frame after its publishes commit,
  at most one frame per wake-up of the child.
- The child reports each ack's record count, so the parent's queue depth, which ingest
  checks against the capacity and ``/metrics`` shows, stays exact. It names the rows
  before the ack commits, so that after a child's death the parent can tell from the
  file whether its last ack committed.
- The child sends the views and events of each stored batch, which the parent hands to
  the live bus and the notifier, as the in-process processor's callback does.
- ``/metrics`` requests a snapshot from the child and merges it (``metrics.merged_registry``),
  and ``/healthz`` reports a stopped processor, a dead child and a child that cannot start.

A child that exits on its own is restarted after 1 s, doubling up to 30 s. Nothing
acknowledged is lost, because the child acks the queue only after the store write, and
rows it did not ack are fetched again by the next child.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from fleetpulse import metrics
from fleetpulse.config import Settings
from fleetpulse.errors import FleetpulseError
from fleetpulse.metrics import FamilySnapshot
from fleetpulse.notify.notifier import Notifier
from fleetpulse.notify.rulebook import RuleBook
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
    ParentFrame,
    Published,
    Started,
    Stop,
    Stored,
    encode_frame,
    read_child_frame,
)
from fleetpulse.roles.process import fan_out
from fleetpulse.store.base import ProcessedBatch, VehicleSnapshot

log = logging.getLogger(__name__)

CHILD_MODULE = "fleetpulse.roles.child_main"
# Covers the child's wait for an earlier child's processor.lock (30 s) and opening
# the files, which may migrate the store's schema.
START_TIMEOUT_S = 90.0
# The child cancels the batch in progress and commits what it already sent to its
# writers, which takes one store commit at most.
STOP_TIMEOUT_S = 15.0
METRICS_TIMEOUT_S = 2.0
# The child sends a metrics frame every second even when idle (REPORT_INTERVAL_S in
# child_main), so a child silent for this long is stopped (SIGSTOP) or stuck.
UNRESPONSIVE_AFTER_S = 10.0
RESTART_INITIAL_S = 1.0
RESTART_MAX_S = 30.0
# A child that ran this long before it died restarts after RESTART_INITIAL_S again.
RESTART_RESET_AFTER_S = 60.0
DRAIN_POLL_S = 0.01


class ProcessorChildError(FleetpulseError):
    """The processor child could not start; the message contains the child's error."""

    retriable = False


@dataclass
class _Child:
    """One running child process and its end of the channel."""

    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    started_at_s: float = 0.0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # The last Acking frame not yet followed by Acked.
    pending_ack: Acking | None = None
    # When the last frame of any kind arrived (time.monotonic), 0.0 before the first.
    last_frame_s: float = 0.0
    # True while metrics requests time out, so that the warning is logged once.
    silent_logged: bool = False

    def silent_for_s(self) -> float:
        """Return the seconds since the child's last frame, 0.0 before it started."""
        if self.last_frame_s == 0.0:
            return 0.0
        return time.monotonic() - self.last_frame_s

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, frame: ParentFrame) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_frame(frame))


class ChildProcessRole:
    """Runs the processor in a child process; the notifier stays in this process.

    It offers what ``EmbeddedServer`` and tests use of ``ProcessRole`` and
    ``Processor``: ``start``, ``close``, ``drain``, ``failure``, ``health_problems`` and
    ``notifier``. The caller opens the queue and the store before ``start`` and closes
    them after ``close``.
    """

    def __init__(
        self,
        settings: Settings,
        queue: SqliteQueue,
        on_write: Callable[[ProcessedBatch], None],
    ) -> None:
        notify = settings.notify
        rulebook = RuleBook(notify.rules, settings.server.data_dir, bool(notify.smtp_host))
        self.notifier = Notifier(notify, rulebook)
        self._settings = settings
        self._settings_json = msgspec.json.encode(settings)
        self._queue = queue
        self._on_write = fan_out(on_write, self.notifier.submit)
        self._child: _Child | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        # Why no child runs now (it died, or a restart failed), for /healthz.
        self._down_problem: str | None = None
        # Why the child's processor stopped, as the child reported it.
        self._failure: str | None = None
        self._latest_metrics: list[FamilySnapshot] = []
        # Counters and histograms of children that exited, so totals never go back.
        self._exited_metrics: list[FamilySnapshot] = []
        self._metric_requests: dict[int, asyncio.Future[list[FamilySnapshot]]] = {}
        self._request_ids = itertools.count(1)
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """Return the pid of the running child, or None between a death and the restart."""
        return self._child.pid if self._child is not None else None

    async def start(self) -> None:
        """Start the notifier and the child. Raises ProcessorChildError if the child fails."""
        await self.notifier.start()
        try:
            child = await self._spawn()
        except BaseException:
            await self.notifier.close()
            raise
        metrics.add_remote_source(self)
        self._supervisor = asyncio.create_task(self._supervise(child), name="fleetpulse-child")

    async def close(self) -> None:
        """Stop the child (SIGKILL after STOP_TIMEOUT_S), then the notifier. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        supervisor = self._supervisor
        self._supervisor = None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.wait([supervisor])
        child = self._child
        self._child = None
        if child is not None:
            await self._stop_child(child)
        metrics.remove_remote_source(self)
        await self.notifier.close()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the child has acknowledged every published record.

        Returns False if that does not happen within ``timeout_s`` seconds. Raises
        RuntimeError if the role is not running or the child's processor stopped. A
        child that died is waited for while it restarts.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if self._supervisor is None or self._supervisor.done():
                raise RuntimeError("processor child is not running: see the log for why")
            if self._failure is not None:
                raise RuntimeError(f"processor child stopped processing: {self._failure}")
            if self._child is not None and self._queue.depth() == 0:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_S)

    @property
    def failure(self) -> str | None:
        """Return why the child's processor stopped on its own, or None while it runs."""
        return self._failure

    def health_problems(self) -> list[str]:
        """Return why processing stopped or no child runs, or an empty list while it runs."""
        problems = []
        if self._failure is not None:
            problems.append(f"processor stopped: {self._failure}")
        if self._down_problem is not None:
            problems.append(self._down_problem)
        child = self._child
        if child is not None and child.silent_for_s() > UNRESPONSIVE_AFTER_S:
            problems.append(
                f"processor child pid {child.pid} has sent nothing for "
                f"{child.silent_for_s():.0f} s: it is stopped or stuck; records are not "
                "processed. Check it with `ps` or py-spy, or restart fleetpulse"
            )
        return problems

    # --- metrics of the child (metrics.RemoteMetrics) ------------------------------

    def latest_families(self) -> list[FamilySnapshot]:
        """Return the child's newest snapshot plus the totals of children that exited."""
        return self._exited_metrics + self._latest_metrics

    async def fresh_families(self) -> list[FamilySnapshot]:
        """Request a snapshot from the child; return the newest one if none arrives in time."""
        child = self._child
        if child is None or child.started_at_s == 0.0:
            return self.latest_families()
        if child.silent_for_s() > METRICS_TIMEOUT_S and child.silent_logged:
            # Already silent at the last scrape: return at once instead of waiting again.
            return self.latest_families()
        request_id = next(self._request_ids)
        answer: asyncio.Future[list[FamilySnapshot]] = asyncio.get_running_loop().create_future()
        self._metric_requests[request_id] = answer
        try:
            child.send(MetricsRequest(request_id))
            families = await asyncio.wait_for(answer, METRICS_TIMEOUT_S)
        except TimeoutError:
            if not child.silent_logged:
                child.silent_logged = True
                log.warning(
                    "processor child sent no metrics within %g s, serving its last "
                    "snapshot until it responds again: pid=%s",
                    METRICS_TIMEOUT_S,
                    child.pid,
                )
            return self.latest_families()
        finally:
            self._metric_requests.pop(request_id, None)
        return self._exited_metrics + families

    # --- the child's life ---------------------------------------------------------

    async def _spawn(self) -> _Child:
        """Start a child, hand it the settings and wait until its processor runs."""
        parent_end, child_end = socket.socketpair()
        # NOTE: Linux sends the child's PR_SET_PDEATHSIG when the thread that spawned it
        # exits, not the process. That is the event loop's thread, which lives as long as
        # the server in `fleetpulse run` and in the tests.
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                CHILD_MODULE,
                "--channel-fd",
                str(child_end.fileno()),
                "--parent-pid",
                str(os.getpid()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(child_end.fileno(),),
            )
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        reader, writer = await asyncio.open_connection(sock=parent_end)
        child = _Child(process, reader, writer)
        log.info("processor child spawned: pid=%s", child.pid)
        try:
            child.send(Configure(self._settings_json))
            await self._expect_started(child)
        except BaseException:
            await self._stop_child(child, ask=False)
            raise
        child.started_at_s = time.monotonic()
        child.last_frame_s = child.started_at_s
        child.tasks = [
            asyncio.create_task(self._read_frames(child), name="fleetpulse-child-frames"),
            asyncio.create_task(self._forward_publishes(child), name="fleetpulse-child-wake"),
        ]
        self._child = child
        self._down_problem = None
        self._failure = None
        log.info("processor child started: pid=%s queue_depth=%s", child.pid, self._queue.depth())
        return child

    async def _expect_started(self, child: _Child) -> None:
        try:
            frame = await asyncio.wait_for(read_child_frame(child.reader), START_TIMEOUT_S)
        except TimeoutError:
            raise ProcessorChildError(
                f"processor child pid {child.pid} did not start within {START_TIMEOUT_S:g} s; "
                "see its log lines above"
            ) from None
        except ChannelClosed:
            code = await _wait_exit(child.process, 5.0)
            raise ProcessorChildError(
                f"processor child pid {child.pid} exited during its start with code {code}; "
                "see its log lines above"
            ) from None
        if isinstance(frame, Failed):
            raise ProcessorChildError(f"processor child could not start: {frame.message}")
        if not isinstance(frame, Started):
            raise ProcessorChildError(
                f"processor child pid {child.pid} sent {type(frame).__name__} instead of "
                "Started; the child and the parent differ in version"
            )

    async def _supervise(self, child: _Child) -> None:
        """Restart the child whenever it exits, with back-off, until close()."""
        delay_s = RESTART_INITIAL_S
        while True:
            code = await child.process.wait()
            ran_s = time.monotonic() - child.started_at_s
            await self._forget_child(child)
            # Exit code 0 is a clean stop on SIGTERM, as when a service manager signals
            # the whole process group. If this server is stopping too, close() cancels
            # this task before the restart.
            log.log(
                logging.WARNING if code == 0 else logging.ERROR,
                "processor child exited: pid=%s exit_code=%s ran_s=%.1f; restarting in %g s "
                "unless the server stops",
                child.pid,
                code,
                ran_s,
                delay_s if ran_s < RESTART_RESET_AFTER_S else RESTART_INITIAL_S,
            )
            if ran_s >= RESTART_RESET_AFTER_S:
                delay_s = RESTART_INITIAL_S
            self._down_problem = (
                f"processor child pid {child.pid} exited with code {code}; restarting it"
            )
            while True:
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2.0, RESTART_MAX_S)
                try:
                    child = await self._spawn()
                except (ProcessorChildError, OSError) as exc:
                    self._down_problem = f"processor child cannot be restarted: {exc}"
                    log.error("processor child restart failed, retrying in %g s: %s", delay_s, exc)
                    continue
                self.restarts += 1
                break

    async def _read_frames(self, child: _Child) -> None:
        while True:
            try:
                frame = await read_child_frame(child.reader)
            except ChannelClosed:
                return
            self._handle_frame(child, frame)

    def _handle_frame(self, child: _Child, frame: ChildFrame) -> None:
        child.last_frame_s = time.monotonic()
        if child.silent_logged:
            child.silent_logged = False
            log.info("processor child responds again: pid=%s", child.pid)
        if isinstance(frame, Stored):
            update = frame.update
            self._on_write(
                ProcessedBatch(
                    events=update.events,
                    vehicles=[VehicleSnapshot(view=view, state=b"") for view in update.views],
                )
            )
        elif isinstance(frame, Acking):
            child.pending_ack = frame
        elif isinstance(frame, Acked):
            child.pending_ack = None
            self._queue.add_external_acks(frame.records)
        elif isinstance(frame, Metrics):
            self._latest_metrics = frame.families
            answer = self._metric_requests.get(frame.request_id)
            if answer is not None and not answer.done():
                answer.set_result(frame.families)
        elif isinstance(frame, Health):
            if frame.failure is not None:
                log.error(
                    "processor child stopped processing: pid=%s error=%s", child.pid, frame.failure
                )
            self._failure = frame.failure
        else:
            log.warning(
                "processor child sent an unexpected frame: pid=%s type=%s",
                child.pid,
                type(frame).__name__,
            )

    async def _forward_publishes(self, child: _Child) -> None:
        while await self._queue.wait_published():
            child.send(Published())

    async def _forget_child(self, child: _Child) -> None:
        """Drop a child that exited: finish reading its frames, keep its counter totals."""
        if self._child is child:
            self._child = None
        for task in child.tasks:
            if task.get_name() == "fleetpulse-child-frames":
                # The frames sent before the exit are still in the socket: read them all.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
            task.cancel()
        if child.tasks:
            await asyncio.wait(child.tasks)
        child.writer.close()
        if child.pending_ack is not None:
            await self._settle_pending_ack(child, child.pending_ack)
        self._exited_metrics = metrics.total_counters(self._exited_metrics + self._latest_metrics)
        self._latest_metrics = []
        self._failure = None

    async def _settle_pending_ack(self, child: _Child, pending: Acking) -> None:
        """Count the records of an ack that the child committed but did not report."""
        try:
            left = await self._queue.count_rows(pending.offsets)
        except FleetpulseError as exc:
            log.error(
                "cannot check the last ack of processor child pid=%s, queue depth may be "
                "high by up to %s records: %s",
                child.pid,
                pending.records,
                exc,
            )
            return
        if left == 0:
            self._queue.add_external_acks(pending.records)
        log.info(
            "processor child pid=%s exited during an ack: committed=%s records=%s",
            child.pid,
            left == 0,
            pending.records,
        )

    async def _stop_child(self, child: _Child, ask: bool = True) -> None:
        """Ask the child to stop, SIGKILL it after STOP_TIMEOUT_S, then forget it."""
        if ask:
            child.send(Stop())
        else:
            child.writer.close()
        code = await _wait_exit(child.process, STOP_TIMEOUT_S if ask else 0.0)
        if code is None:
            log.warning(
                "processor child did not stop within %g s, killing it: pid=%s",
                STOP_TIMEOUT_S if ask else 0.0,
                child.pid,
            )
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGKILL)
            code = await child.process.wait()
        await self._forget_child(child)
        log.info("processor child stopped: pid=%s exit_code=%s", child.pid, code)


async def _wait_exit(process: asyncio.subprocess.Process, timeout_s: float) -> int | None:
    """Return the exit code once the process exits, or None after ``timeout_s``."""
    try:
        return await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        return None
