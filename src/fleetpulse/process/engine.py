"""The processor: an asyncio task that takes records from the queue to the store.

Each round fetches a batch, loads the saved state of vehicles not yet in memory,
processes the batch in a worker thread (the event loop also serves HTTP), writes the
result to the store and only then acknowledges the queue. The write and ack of one batch
run while the next batch is fetched and processed, and batches are written one at a
time in fetch order. A crash between the write and the acknowledgement redelivers the
batch, and since the saved states already contain the newer record times, the replayed
records are duplicates and produce nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import msgspec

from fleetpulse import metrics
from fleetpulse.config import Settings
from fleetpulse.errors import FleetpulseError
from fleetpulse.process.batch import process_records, sweep_offline
from fleetpulse.process.chain import build_chain
from fleetpulse.process.state import VehicleState, decode_state
from fleetpulse.queue.base import Delivery, Queue, partition_of
from fleetpulse.store.base import ProcessedBatch, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

# Maximum wait for the first record of a fetch, which bounds how late the offline sweep runs.
FETCH_TIMEOUT_S = 0.5

# Back-off between retries of a failed queue or store call: doubles up to the maximum.
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0

# Vehicles whose saved state is loaded per store call when the processor starts.
STATE_LOAD_CHUNK = 1000

DRAIN_POLL_S = 0.01

__all__ = ["Processor", "process_records", "sweep_offline"]


class Processor:
    """Consumes the queue, processes records per vehicle and writes the results to the store.

    ``start`` launches the task and ``close`` cancels and awaits it. Vehicle states stay
    in memory between batches, and a vehicle first seen since the start is loaded from
    the store.
    """

    def __init__(
        self,
        settings: Settings,
        queue: Queue,
        store: Store,
        on_write: Callable[[ProcessedBatch], None] | None = None,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._store = store
        # Called with each batch once the store has written it, such as the live hub's
        # publish. It runs on the event loop and must return without blocking.
        self._on_write = on_write
        # A queue shared by several processors reports which partitions this one owns.
        queue.set_ownership_listener(self._change_ownership)
        self._chain = build_chain(settings)
        # NOTE: states are never evicted, so memory grows with the number of vehicles seen.
        self._states: dict[str, VehicleState] = {}
        self._task: asyncio.Task[None] | None = None
        # True while states are loaded or a batch is processed.
        self._busy = False
        # The store write and ack of the newest processed batch, while they run.
        self._writing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the processing task. Raises RuntimeError if it is already running."""
        if self._task is not None:
            raise RuntimeError("processor already started: call close() before starting again")
        # A new dict, so that a worker thread left over from a cancelled round cannot
        # write into the states of this run.
        self._states = {}
        self._writing = None
        # Busy until the start-up load is done, so drain() waits for the loaded states.
        self._busy = True
        self._task = asyncio.create_task(self._run(), name="fleetpulse-processor")
        self._task.add_done_callback(self._log_task_end)
        log.info(
            "processor started: fetch_max_records=%s offline_check_interval_s=%s detectors=%s",
            self._settings.queue.fetch_max_records,
            self._settings.process.offline_check_interval_s,
            ",".join(detector.name for detector in self._chain.detectors),
        )

    async def close(self) -> None:
        """Cancel the processing task and wait for it to end. Safe to call twice."""
        task = self._task
        if task is None:
            return
        self._task = None
        task.cancel()
        # asyncio.wait neither raises the task's error (_log_task_end logged it) nor
        # swallows a cancellation of close() itself.
        await asyncio.wait([task])
        log.info("processor stopped: vehicles=%s", len(self._states))

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the queue has no unacknowledged record and no batch is in progress.

        Returns False if that does not happen within ``timeout_s`` seconds. Raises
        RuntimeError if the processing task is not running or dies during the wait, so
        a caller does not wait for a dead processor.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            task = self._task
            if task is None or task.done():
                raise RuntimeError("processor is not running: see the log for why it stopped")
            if not self._busy and self._write_finished() and self._queue.depth() == 0:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_S)

    def _write_finished(self) -> bool:
        # A write that failed is not finished: the task stops on it instead.
        writing = self._writing
        if writing is None:
            return True
        return writing.done() and not writing.cancelled() and writing.exception() is None

    @property
    def failure(self) -> str | None:
        """Return why the processing task stopped on its own, or None while it runs."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        error = task.exception()
        return repr(error) if error is not None else "the processing task returned"

    def vehicle_state(self, device_id: str) -> VehicleState | None:
        """Return the in-memory state of a vehicle, or None if it is not loaded."""
        return self._states.get(device_id)

    async def _run(self) -> None:
        try:
            await self._load_known_vehicles()
        finally:
            self._busy = False
        loop = asyncio.get_running_loop()
        interval_s = self._settings.process.offline_check_interval_s
        next_sweep = loop.time() + interval_s
        try:
            while True:
                wait_s = min(FETCH_TIMEOUT_S, max(0.0, next_sweep - loop.time()))
                deliveries = await self._fetch(wait_s)
                if deliveries:
                    await self._handle(deliveries)
                else:
                    await self._finish_writing()
                if loop.time() >= next_sweep:
                    await self._finish_writing()
                    await self._sweep()
                    next_sweep = loop.time() + interval_s
        finally:
            writing = self._writing
            if writing is not None:
                if not writing.done():
                    writing.cancel()
                    await asyncio.wait([writing])
                # A write that failed after the last look at it: nothing else reports it.
                if not writing.cancelled() and writing.exception() is not None:
                    log.error(
                        "store write or ack failed while the processor stopped",
                        exc_info=writing.exception(),
                    )

    async def _fetch(self, wait_s: float) -> list[Delivery]:
        started = time.perf_counter()
        deliveries = await self._retry(
            lambda: self._queue.fetch(self._settings.queue.fetch_max_records, wait_s),
            "queue fetch",
            "-",
        )
        if deliveries:
            metrics.STAGE_SECONDS.labels("fetch").observe(time.perf_counter() - started)
        return deliveries

    async def _handle(self, deliveries: list[Delivery]) -> None:
        """Process a batch, then start its store write and ack once the previous batch's
        write and ack are done.

        The batch is processed while the previous batch is still being written, so the
        processing thread and the SQLite writer thread run at the same time. Writes stay
        in batch order, one at a time, and each batch is acknowledged only after its own
        write returned.
        """
        records = [record for delivery in deliveries for record in delivery.records]
        self._busy = True
        try:
            await self._load_states({record.device_id for record in records})

            started = time.perf_counter()
            batch = await asyncio.to_thread(
                process_records, self._states, records, self._settings, _now_ms(), self._chain
            )
            metrics.STAGE_SECONDS.labels("process").observe(time.perf_counter() - started)
        finally:
            self._busy = False

        await self._finish_writing()
        oldest_received_at_ms = min(
            (record.received_at_ms for record in records), default=_now_ms()
        )
        self._writing = asyncio.create_task(
            self._store_and_ack(deliveries, batch, len(records), oldest_received_at_ms),
            name="fleetpulse-processor-write",
        )

    async def _finish_writing(self) -> None:
        """Wait for the write and ack of the previous batch; raise what stopped them."""
        writing = self._writing
        if writing is None:
            return
        try:
            await writing
        finally:
            if writing.done():
                self._writing = None

    async def _store_and_ack(
        self,
        deliveries: list[Delivery],
        batch: ProcessedBatch,
        fetched: int,
        oldest_received_at_ms: int,
    ) -> None:
        offsets = _offsets_of(deliveries)
        await self._write(batch, offsets)
        metrics.PROCESSING_LAG.set(max(0.0, (_now_ms() - oldest_received_at_ms) / 1000.0))

        started = time.perf_counter()
        await self._retry(lambda: self._queue.ack(deliveries), "queue ack", offsets)
        metrics.STAGE_SECONDS.labels("ack").observe(time.perf_counter() - started)

        metrics.RECORDS_PROCESSED.inc(len(batch.records))
        metrics.VEHICLES_TRACKED.set(len(self._states))
        log.debug(
            "batch processed: offsets=%s records=%s stored=%s events=%s",
            offsets,
            fetched,
            len(batch.records),
            len(batch.events),
        )

    async def _write(self, batch: ProcessedBatch, offsets: str) -> None:
        # The batch is written again as it is, never reprocessed: the in-memory states
        # already include it, so reprocessing would find only duplicates.
        started = time.perf_counter()
        await self._retry(lambda: self._store.write(batch), "store write", offsets)
        metrics.STAGE_SECONDS.labels("store").observe(time.perf_counter() - started)
        if self._on_write is not None:
            try:
                self._on_write(batch)
            except Exception:
                # The batch is stored, so processing goes on; only live clients miss it.
                log.exception("after-write callback failed: offsets=%s", offsets)

    async def _sweep(self) -> None:
        batch = await asyncio.to_thread(sweep_offline, self._states, self._settings, _now_ms())
        if batch.events or batch.vehicles:
            log.info("vehicles offline: count=%s", len(batch.events))
            await self._write(batch, "offline-sweep")

    async def _load_known_vehicles(self) -> None:
        # Loading every stored vehicle lets the offline sweep cover vehicles that have
        # been silent since before this start.
        try:
            views = await self._store.vehicles()
        except FleetpulseError as exc:
            log.warning("could not list stored vehicles, loading them on demand: error=%s", exc)
            return
        # Only vehicles of owned partitions, so that two processors never both report a
        # vehicle offline. A shared queue owns none before the first fetch, and the
        # ownership listener loads the vehicles of partitions acquired then.
        owned = self._queue.owned_partitions()
        partitions = self._settings.queue.partitions
        device_ids = [
            view.device_id
            for view in views
            if owned is None or partition_of(view.device_id, partitions) in owned
        ]
        for start in range(0, len(device_ids), STATE_LOAD_CHUNK):
            await self._load_states(device_ids[start : start + STATE_LOAD_CHUNK])
        metrics.VEHICLES_TRACKED.set(len(self._states))
        log.info("vehicle states loaded: vehicles=%s", len(self._states))

    async def _change_ownership(self, acquired: frozenset[int], released: frozenset[int]) -> None:
        """Drop the states of vehicles in changed partitions and load those of acquired ones.

        Another processor may have stored newer states of an acquired partition's
        vehicles, so they are read from the store again even if cached here. The queue
        awaits this inside fetch, before it hands out records of an acquired partition.
        """
        # The previous batch may still be in its store write. It is stored and
        # acknowledged first, so that the processor taking over a released partition
        # loads states that include it.
        await self._finish_writing()
        partitions = self._settings.queue.partitions
        changed = acquired | released
        dropped = [
            device_id
            for device_id in self._states
            if partition_of(device_id, partitions) in changed
        ]
        for device_id in dropped:
            del self._states[device_id]

        loaded = 0
        if acquired:
            views = await self._retry(self._store.vehicles, "vehicle list", "-")
            device_ids = [
                view.device_id
                for view in views
                if partition_of(view.device_id, partitions) in acquired
            ]
            for start in range(0, len(device_ids), STATE_LOAD_CHUNK):
                await self._load_states(device_ids[start : start + STATE_LOAD_CHUNK])
            loaded = len(device_ids)
        metrics.VEHICLES_TRACKED.set(len(self._states))
        log.info(
            "partition ownership applied: acquired=%s released=%s states_dropped=%s "
            "states_loaded=%s",
            sorted(acquired),
            sorted(released),
            len(dropped),
            loaded,
        )

    async def _load_states(self, device_ids: Iterable[str]) -> None:
        missing = sorted(device_id for device_id in device_ids if device_id not in self._states)
        if not missing:
            return
        saved = await self._retry(lambda: self._store.load_states(missing), "state load", "-")
        for device_id, data in saved.items():
            try:
                self._states[device_id] = decode_state(data)
            except msgspec.DecodeError as exc:
                log.warning(
                    "saved state of vehicle cannot be decoded, starting it afresh: "
                    "vehicle=%s error=%s",
                    device_id,
                    exc,
                )

    async def _retry(self, call: Callable[[], Awaitable[T]], operation: str, offsets: str) -> T:
        delay_s = RETRY_INITIAL_S
        attempt = 1
        while True:
            try:
                return await call()
            except FleetpulseError as exc:
                if not exc.retriable:
                    raise
                log.warning(
                    "%s failed, retrying: offsets=%s attempt=%s retry_in_s=%.1f error=%s",
                    operation,
                    offsets,
                    attempt,
                    delay_s,
                    exc,
                )
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2.0, RETRY_MAX_S)
            attempt += 1

    def _log_task_end(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("processor task failed, processing stopped", exc_info=error)


def _offsets_of(deliveries: Sequence[Delivery]) -> str:
    return ",".join(f"{delivery.partition}:{delivery.offset}" for delivery in deliveries)


def _now_ms() -> int:
    return int(time.time() * 1000)
