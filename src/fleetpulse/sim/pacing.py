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
from fleetpulse.sim.transports.base import Transport

log = logging.getLogger(__name__)

# How often on_progress callbacks run.
PROGRESS_INTERVAL_S = 0.5

ProgressCallback = Callable[[Progress], None]


class Pacer:
    """Hands timed records to the sender, never before their time has come.

    A record at device second t is handed over no earlier than ``t / speed`` wall
    seconds after ``clock_start_s`` (a ``time.monotonic()`` value). With ``speed``
    math.inf nothing waits. The sender's partial batches are flushed before every wait,
    so a slow fleet still sends promptly. Otherwise the sender fills its batches.
    """

    def __init__(self, sender: Transport, speed: float, total_s: float) -> None:
        self.sender = sender
        self.speed = speed
        self.total_s = total_s
        self.done_s = 0.0
        self.started_s = time.monotonic()

    async def run(self, ticks: Iterable[tuple[float, list[Any]]], clock_start_s: float) -> None:
        """Pace ``ticks`` of (device second, records) into the sender, then drain it.

        NOTE: the ticks are generated on the event loop, so no request makes progress
        while one tick is built. With very large fleets at max speed, generation rather
        than the server can limit the rate; moving it to a thread would lift that.
        """
        self.started_s = clock_start_s
        for tick_s, records in ticks:
            if not math.isinf(self.speed):
                delay_s = clock_start_s + tick_s / self.speed - time.monotonic()
                if delay_s > 0:
                    await self.sender.flush()
                    await asyncio.sleep(delay_s)
            self.done_s = tick_s
            await self.sender.add(records)
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
