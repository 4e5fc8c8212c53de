"""The processing engine: enrichment, detectors and trips, per vehicle in time order.

``process/chain.py`` lists the steps and detectors in order, ``process/batch.py``
processes a batch without I/O, and ``process/engine.py`` runs it between the queue and
the store.
"""

from fleetpulse.process.batch import process_records, sweep_offline
from fleetpulse.process.chain import Chain, build_chain
from fleetpulse.process.engine import Processor
from fleetpulse.process.state import VehicleState, decode_state, encode_state

__all__ = [
    "Chain",
    "Processor",
    "VehicleState",
    "build_chain",
    "decode_state",
    "encode_state",
    "process_records",
    "sweep_offline",
]
