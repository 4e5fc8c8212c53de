"""The ``http`` transport: batches to ``POST /v1/telemetry`` through ``sim.sender.Sender``."""

from __future__ import annotations

from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.sender import Sender


class HttpTransport(Sender):
    """The HTTP Sender, built from the simulation options."""

    def __init__(self, options: SimulationOptions) -> None:
        super().__init__(
            options.url,
            batch_size=options.batch_size,
            concurrency=options.concurrency,
            request_timeout_s=options.request_timeout_s,
            give_up_after_s=options.give_up_after_s,
        )


TRANSPORT = HttpTransport
