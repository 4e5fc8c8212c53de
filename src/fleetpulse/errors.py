"""The exception tree of fleetpulse.

    FleetpulseError            root; ``retriable`` says whether the same call may succeed later
    ├── ConfigError            a setting is invalid; fix the file or the variable
    ├── QueueFullError         the queue is at capacity; retry after a delay (retriable)
    ├── QueueError             the queue backend failed (retriable)
    └── StoreError             the store backend failed (retriable)

Third-party errors are translated where they cross into fleetpulse, with the original
chained as ``__cause__``.
"""


class FleetpulseError(Exception):
    """Root of every error fleetpulse raises on purpose."""

    retriable: bool = False


class ConfigError(FleetpulseError):
    """A configuration value is missing or invalid."""


class QueueError(FleetpulseError):
    """The queue backend could not publish, fetch or acknowledge."""

    retriable = True


class QueueFullError(QueueError):
    """The queue contains its configured capacity, so the publisher should retry later."""

    def __init__(self, depth: int, capacity: int) -> None:
        super().__init__(
            f"queue is full ({depth} of {capacity} records); retry later or raise "
            "queue.capacity_records"
        )
        self.depth = depth
        self.capacity = capacity


class StoreError(FleetpulseError):
    """The store backend could not read or write."""

    retriable = True
