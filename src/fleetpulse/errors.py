"""The exception tree of fleetpulse.

    FleetpulseError            root; ``retriable`` says whether the same call may succeed later
    ├── ConfigError            a setting is invalid; fix the file or the variable
    ├── QueueFullError         the queue is at capacity; retry after a delay (retriable)
    ├── OverloadedError        ingest holds its in-flight limit; retry after a delay (retriable)
    ├── QueueError             the queue backend failed (retriable)
    │   └── QueueStorageFullError   the disk under queue.db is full (also a StorageFullError)
    └── StoreError             the store backend failed (retriable)
        └── StoreStorageFullError   the disk under store.db is full (also a StorageFullError)

StorageFullError marks both disk-full errors, so a caller can catch a full disk whichever
backend hit it.

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


class OverloadedError(FleetpulseError):
    """Ingest has ``ingest.max_inflight_bytes`` of request bodies in progress, so retry later."""

    retriable = True

    def __init__(self, inflight_bytes: int, request_bytes: int, limit_bytes: int) -> None:
        super().__init__(
            f"ingest is overloaded: {inflight_bytes} bytes of requests in progress, and "
            f"{request_bytes} more would pass ingest.max_inflight_bytes = {limit_bytes}; "
            "retry later"
        )
        self.inflight_bytes = inflight_bytes
        self.request_bytes = request_bytes
        self.limit_bytes = limit_bytes


class StorageFullError(FleetpulseError):
    """A write failed because the disk or file system of the data directory is full.

    Retriable: the same write succeeds once space is freed, without a restart.
    """

    retriable = True


class QueueStorageFullError(QueueError, StorageFullError):
    """The queue could not commit because its disk is full (SQLITE_FULL or ENOSPC)."""


class StoreStorageFullError(StoreError, StorageFullError):
    """The store could not commit because its disk is full (SQLITE_FULL or ENOSPC)."""
