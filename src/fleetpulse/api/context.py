"""What the API handlers share: settings, the store, the queue and a health probe."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetpulse.config import Settings
from fleetpulse.queue.base import Queue
from fleetpulse.store.base import Store


def wall_clock_ms() -> int:
    """Return the current time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class ApiContext:
    """The parts of a running pipeline the query API reads from."""

    settings: Settings
    store: Store
    # None in a process that serves the API without a queue of its own.
    queue: Queue | None = None
    # Returns a list of problems; empty when every stage is healthy.
    health_problems: Callable[[], list[str]] = field(default=lambda: [])
    clock_ms: Callable[[], int] = wall_clock_ms
