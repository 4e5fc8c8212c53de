"""A vehicle's processing state: every step's and detector's memory, saved as msgpack.

The store keeps the encoded state beside the vehicle's view, in the same transaction
as the records it reflects, so a restarted processor continues where it stopped.
"""

from __future__ import annotations

import msgspec

from fleetpulse.model.vocabulary import NORMAL, PARKED
from fleetpulse.process.detectors.dtc import DtcState
from fleetpulse.process.detectors.fuel_drop import FuelDropState
from fleetpulse.process.detectors.geofence import GeofenceState
from fleetpulse.process.detectors.harsh import HarshState
from fleetpulse.process.detectors.idling import IdlingState
from fleetpulse.process.detectors.ignition import IgnitionState
from fleetpulse.process.detectors.level import LevelState
from fleetpulse.process.detectors.maintenance import MaintenanceState
from fleetpulse.process.detectors.offline import OfflineState
from fleetpulse.process.detectors.overspeed import OverspeedState
from fleetpulse.process.motion import MotionState
from fleetpulse.process.odometer import OdometerState
from fleetpulse.process.trips import TripState

# Raise when a change makes saved states unreadable, so that older states start afresh.
STATE_VERSION = 1


class Readings(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The newest reported values and the newest record's assessment, for the vehicle view.

    Append new fields at the end.
    """

    motion: str = PARKED
    status: str = NORMAL
    reasons: tuple[str, ...] = ()
    speed_kmh: float | None = None
    heading_deg: float | None = None
    engine_rpm: float | None = None
    coolant_c: float | None = None
    fuel_pct: float | None = None
    battery_v: float | None = None


class VehicleState(msgspec.Struct, gc=False):
    """Everything the engine remembers of one vehicle between records.

    ``last_ts_ms`` is the device time of the newest processed record, and
    ``recent_ts_ms`` the times of the newest processed records, used to tell a
    duplicate from a late record. The other fields belong to one step or detector each.
    """

    device_id: str
    version: int = STATE_VERSION
    last_ts_ms: int | None = None
    last_received_at_ms: int = 0
    recent_ts_ms: list[int] = msgspec.field(default_factory=list)
    readings: Readings = Readings()
    motion: MotionState = MotionState()
    odometer: OdometerState = OdometerState()
    ignition: IgnitionState = IgnitionState()
    overspeed: OverspeedState = OverspeedState()
    harsh: HarshState = HarshState()
    idling: IdlingState = IdlingState()
    geofence: GeofenceState = GeofenceState()
    overheat: LevelState = LevelState()
    dtc: DtcState = DtcState()
    low_fuel: LevelState = LevelState()
    fuel_drop: FuelDropState = FuelDropState()
    low_battery: LevelState = LevelState()
    trip: TripState = TripState()
    offline: OfflineState = OfflineState()
    maintenance: MaintenanceState = MaintenanceState()


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VehicleState)


def encode_state(state: VehicleState) -> bytes:
    """Serialise a vehicle state to msgpack."""
    return _encoder.encode(state)


def decode_state(data: bytes) -> VehicleState:
    """Parse a saved vehicle state.

    Raises msgspec.DecodeError when the bytes are not a state of the current
    ``STATE_VERSION``. The caller then starts the vehicle afresh.
    """
    state = _decoder.decode(data)
    if state.version != STATE_VERSION:
        raise msgspec.DecodeError(
            f"vehicle state version {state.version} is not the supported {STATE_VERSION}"
        )
    return state
