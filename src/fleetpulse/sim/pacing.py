"""Feeding timed records to the sender at a time factor, and reporting progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from fleetpulse.sim.progress import Progress
from fleetpulse.sim.sender import Sender

log = logging.getLogger(__name__)

# How often on_progress callbacks run.
PROGRESS_INTERVAL_S = 0.5

ProgressCallback = Callable[[Progress], None]


class Pacer:
    """Sends timed records in batches, never before their time has come.

    A record at device second t is handed to the sender no earlier than ``t / speed``
    wall seconds after ``clock_start_s`` (a ``time.monotonic()`` value). With ``speed``
    math.inf nothing waits. Records collected so far are flushed before every wait, so
    a slow fleet still sends promptly; otherwise batches fill up to ``batch_size``.
    """

    def __init__(self, sender: Sender, speed: float, batch_size: int, total_s: float) -> None:
        self.sender = sender
        self.speed = speed
        self.batch_size = batch_size
        self.total_s = total_s
        self.done_s = 0.0
        self.started_s = time.monotonic()

    async def run(self, ticks: Iterable[tuple[float, list[Any]]], clock_start_s: float) -> None:
        self.started_s = clock_start_s
        pending: list[Any] = []
        for tick_s, records in ticks:
            if not math.isinf(self.speed):
                delay_s = clock_start_s + tick_s / self.speed - time.monotonic()
                if delay_s > 0:
                    if pending:
                        await self.sender.submit(pending)
                        pending = []
                    await asyncio.sleep(delay_s)
            self.done_s = tick_s
            pending.extend(records)
            while len(pending) >= self.batch_size:
                await self.sender.submit(pending[: self.batch_size])
                del pending[: self.batch_size]
                # Let the workers send while the fleet is generating as fast as it can.
                await asyncio.sleep(0)
        if pending:
            await self.sender.submit(pending)
        await self.sender.drain()
        self.done_s = self.total_s

    def progress(self) -> Progress:
        elapsed_s = time.monotonic() - self.started_s
        return Progress.of(self.sender.stats, elapsed_s, self.done_s, self.total_s)


@contextlib.asynccontextmanager
async def reporting(pacer: Pacer, on_progress: ProgressCallback | None) -> AsyncIterator[None]:
    """Call ``on_progress`` every PROGRESS_INTERVAL_S while the block runs, and once at the end."""
    if on_progress is None:
        yield
        return
    callback = on_progress

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            callback(pacer.progress())

    task = asyncio.create_task(report(), name="progress")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        callback(pacer.progress())
