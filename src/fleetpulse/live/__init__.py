"""The live stream: the hub that fans stored batches out to ``GET /v1/live`` clients."""

from fleetpulse.live.filters import LiveFilter, LiveRequestError
from fleetpulse.live.hub import LiveCapacityError, LiveHub
from fleetpulse.live.session import LiveEvent, LiveSession

__all__ = [
    "LiveCapacityError",
    "LiveEvent",
    "LiveFilter",
    "LiveHub",
    "LiveRequestError",
    "LiveSession",
]
