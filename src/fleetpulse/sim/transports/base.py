"""The interface a simulator transport implements: what ``simulate()`` needs from it."""

from __future__ import annotations

from typing import Any, Protocol

from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.sender import SendStats


class Transport(Protocol):
    """Delivers simulated records to a server over one protocol.

    Use ``probe()``, ``start()``, then ``add()`` or ``submit()`` records and ``flush()``
    or ``drain()``, then ``close()``. ``stats`` counts what the server acknowledged.
    """

    stats: SendStats

    async def probe(self) -> None: ...
    async def start(self) -> None: ...
    async def add(self, records: list[Any]) -> None: ...
    async def flush(self) -> None: ...
    async def submit(self, records: list[Any]) -> None: ...
    async def drain(self) -> None: ...
    async def close(self) -> None: ...


class TransportFactory(Protocol):
    """The ``TRANSPORT`` of a transport module: a class built from the options."""

    def __call__(self, options: SimulationOptions) -> Transport: ...
