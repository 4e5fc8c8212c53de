"""The store interface every backend implements.

Writes come in batches and are idempotent: writing the same ``ProcessedBatch`` twice
leaves the store as after the first write. That is what lets the processor acknowledge
the queue only after the store has written, and still survive a redelivery.

Records are identified by (device_id, ts_ms), events by (device_id, type, ts_ms) and
trips by (device_id, start_ts_ms). A repeated record key keeps the row already stored.
A repeated event key keeps the row and its id but takes the newer severity and details,
because a detector emits an event again when the episode it describes ends. Trips and
vehicle state are replaced by the newer version.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord
from fleetpulse.model.vehicle import VehicleView

if TYPE_CHECKING:
    from fleetpulse.config import Settings


@dataclass(slots=True)
class VehicleSnapshot:
    """A vehicle's view for the API and its opaque processing state for a restart."""

    view: VehicleView
    state: bytes


@dataclass(slots=True)
class ProcessedBatch:
    """Everything one processing round writes, in one transaction."""

    records: list[EnrichedRecord] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # Closed trips, and open trips whose figures changed.
    trips: list[Trip] = field(default_factory=list)
    vehicles: list[VehicleSnapshot] = field(default_factory=list)


@dataclass(slots=True)
class StoredEvent:
    """An event with the sequence number the store gave it (increasing, for paging and resume)."""

    id: int
    event: Event


@dataclass(slots=True)
class StoredDeadLetter:
    """A dead letter with its store id."""

    id: int
    letter: DeadLetter


# The aggregates behind reports are kept per UTC hour, so a report range must start and
# end on a whole hour. Hours rather than days let a report use day boundaries of a time
# zone whose offset from UTC is a whole number of hours.
ACTIVITY_HOUR_MS = 3_600_000


@dataclass(slots=True)
class VehicleActivity:
    """A vehicle's driving figures over one hour or a range of hours, for reports.

    ``start_ms`` is the start of the hour or of the range. Trips count whole in the hour
    they started. ``driving_s`` is trip duration minus the idle time inside trips,
    ``stops`` the trips that ended, and the overspeed and harsh figures count events by
    their ``ts_ms``. Metres, seconds and km/h.
    """

    device_id: str
    start_ms: int
    distance_m: float = 0.0
    driving_s: float = 0.0
    idle_s: float = 0.0
    trips: int = 0
    stops: int = 0
    max_speed_kmh: float = 0.0
    overspeeds: int = 0
    overspeed_s: float = 0.0
    harsh_brakings: int = 0
    harsh_accelerations: int = 0


@dataclass(slots=True)
class StoreCounts:
    """Totals for health checks and for tests that check that counts add up."""

    records: int
    events: int
    trips: int
    vehicles: int
    dead_letters: int


class Store(abc.ABC):
    """Durable storage and queries. Writes are batched and idempotent.

    The paged queries (``events``, ``dead_letters``) return the newest rows first, or,
    given an ``after_id`` > 0, the oldest rows after that id first.
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the backend and create or upgrade its schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend. Safe to call twice."""

    async def check(self) -> str | None:
        """Return why the store cannot be reached now, or None when it can.

        ``/healthz`` awaits it, so a backend that queries a server bounds the request with a
        timeout of about two seconds. An embedded backend returns None.
        """
        return None

    # --- writes -------------------------------------------------------------------

    @abc.abstractmethod
    async def write(self, batch: ProcessedBatch) -> None:
        """Write a processed batch in one transaction; idempotent."""

    @abc.abstractmethod
    async def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Append rejected records or requests."""

    @abc.abstractmethod
    async def load_states(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        """Return the saved processing state of each listed vehicle that has one."""

    @abc.abstractmethod
    async def purge(self, older_than_ms: int) -> int:
        """Delete records, events, trips and dead letters older than a time; return rows deleted."""

    # --- queries ------------------------------------------------------------------

    @abc.abstractmethod
    async def vehicles(self) -> list[VehicleView]:
        """Return the latest view of every vehicle, ordered by device id."""

    @abc.abstractmethod
    async def vehicle(self, device_id: str) -> VehicleView | None:
        """Return one vehicle's latest view, or None if it never sent a record."""

    @abc.abstractmethod
    async def positions(
        self, device_id: str, from_ms: int, to_ms: int, limit: int
    ) -> list[EnrichedRecord]:
        """Return a vehicle's records with from_ms <= ts_ms < to_ms, oldest first."""

    @abc.abstractmethod
    async def trips(self, device_id: str, from_ms: int, to_ms: int) -> list[Trip]:
        """Return the trips of a vehicle that started in [from_ms, to_ms), oldest first."""

    @abc.abstractmethod
    async def events(
        self,
        device_id: str | None,
        event_type: str | None,
        from_ms: int,
        to_ms: int,
        limit: int,
        after_id: int = 0,
    ) -> list[StoredEvent]:
        """Return at most ``limit`` events with from_ms <= ts_ms < to_ms and id > after_id.

        With ``after_id`` 0 (the default) they are the newest, newest first. With
        ``after_id`` > 0 they are the oldest after it, in ascending id order, so a client
        that polls or resumes with the last id it read never skips an event. Ids follow
        the order the store first received the events in.

        NOTE: an event emitted again (an overspeed at its end) keeps its id. A client
        that read the ongoing copy gets no later page with the final copy, so it must
        query that event again (by vehicle, type and time) for the final details.
        """

    @abc.abstractmethod
    async def event_counts(self, from_ms: int, to_ms: int) -> dict[str, int]:
        """Return the number of events per type in [from_ms, to_ms)."""

    @abc.abstractmethod
    async def alert_leaders(self, from_ms: int, to_ms: int, limit: int) -> list[tuple[str, int]]:
        """Return (device_id, alerts) for the vehicles with the most warning or critical
        events in [from_ms, to_ms), most first."""

    @abc.abstractmethod
    async def distance_m(self, from_ms: int, to_ms: int) -> float:
        """Return the distance all vehicles covered in [from_ms, to_ms), in metres."""

    @abc.abstractmethod
    async def dead_letters(self, limit: int, after_id: int = 0) -> list[StoredDeadLetter]:
        """Return at most ``limit`` dead letters with id > after_id.

        With ``after_id`` 0 (the default) they are the newest, newest first. With
        ``after_id`` > 0 they are the oldest after it, in ascending id order, so a client
        that polls or resumes with the last id it read never skips one.
        """

    @abc.abstractmethod
    async def counts(self) -> StoreCounts:
        """Return the number of stored rows of each kind."""

    # --- reports ------------------------------------------------------------------
    # NOTE: these two are not abstract, so that test doubles written before reports
    # existed still build. A backend without reports raises NotImplementedError.

    async def fleet_activity(self, from_ms: int, to_ms: int) -> list[VehicleActivity]:
        """Return the activity of every known vehicle summed over [from_ms, to_ms),
        ordered by device id, with zero figures for a vehicle without activity.

        ``from_ms`` and ``to_ms`` must be multiples of ACTIVITY_HOUR_MS, else ValueError.
        """
        raise NotImplementedError(f"{type(self).__name__} does not serve reports")

    async def vehicle_activity(
        self, device_id: str, from_ms: int, to_ms: int
    ) -> list[VehicleActivity]:
        """Return a vehicle's activity per UTC hour in [from_ms, to_ms), oldest first,
        leaving out hours without activity.

        ``from_ms`` and ``to_ms`` must be multiples of ACTIVITY_HOUR_MS, else ValueError.
        """
        raise NotImplementedError(f"{type(self).__name__} does not serve reports")


def open_store(settings: Settings) -> Store:
    """Build the store backend chosen by ``[store] backend``."""
    if settings.store.backend == "sqlite":
        from fleetpulse.store.sqlite import SqliteStore

        return SqliteStore(settings)
    if settings.store.backend == "postgres":
        from fleetpulse.store.postgres import PostgresStore

        return PostgresStore(settings)
    raise ValueError(f"unknown store backend {settings.store.backend!r}")
