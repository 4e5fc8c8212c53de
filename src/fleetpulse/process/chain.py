"""The processing chain, declared once and in order.

Every new record of a vehicle passes the enrichment steps, then the detectors, then the
status step, all in the order listed in ``build_chain``. A detector switched off in
``[detectors] disabled`` is left out of the list, so no step checks whether it is
enabled. Each entry names the ``VehicleState`` field that contains its state. The offline
sweep is not part of the chain: it runs on the wall clock, not on records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError
from fleetpulse.model.event import Event, Trip
from fleetpulse.process.detectors.dtc import detect_dtc
from fleetpulse.process.detectors.fuel_drop import detect_fuel_drop
from fleetpulse.process.detectors.geofence import geofence_detector
from fleetpulse.process.detectors.gps_jump import detect_gps_jump
from fleetpulse.process.detectors.harsh import detect_harsh
from fleetpulse.process.detectors.idling import detect_idling
from fleetpulse.process.detectors.ignition import detect_ignition
from fleetpulse.process.detectors.low_battery import detect_low_battery
from fleetpulse.process.detectors.low_fuel import detect_low_fuel
from fleetpulse.process.detectors.maintenance import detect_maintenance, has_service_intervals
from fleetpulse.process.detectors.overheat import detect_overheat
from fleetpulse.process.detectors.overspeed import detect_overspeed
from fleetpulse.process.geo import compile_geofences
from fleetpulse.process.motion import measure_motion
from fleetpulse.process.odometer import check_odometer
from fleetpulse.process.sample import Sample
from fleetpulse.process.state import VehicleState
from fleetpulse.process.status import assess_status
from fleetpulse.process.trips import detect_trip

log = logging.getLogger(__name__)

StepFunction = Callable[[Any, Sample, Settings], Any]
DetectFunction = Callable[[Any, Sample, Settings], tuple[Any, Sequence[Event | Trip]]]
StateGetter = Callable[[VehicleState], Any]
# A detector as Chain.run uses it: name, state field, reader of that field, function.
# A detector without state has "" and None for its field and reader.
DetectorPlan = tuple[str, str, StateGetter | None, DetectFunction]


@dataclass(frozen=True, slots=True)
class Step:
    """An enrichment step: fills in the sample and returns its new state."""

    name: str
    state_field: str
    run: StepFunction


@dataclass(frozen=True, slots=True)
class Detector:
    """A pure detector. ``state_field`` is None for a detector without state."""

    name: str
    state_field: str | None
    detect: DetectFunction


# The result of Chain.run for the many records that trigger nothing. It is shared, so
# nothing may append to it.
NOTHING_EMITTED: tuple[Event | Trip, ...] = ()


@dataclass(frozen=True, slots=True)
class Chain:
    """The steps and detectors a record passes, in order."""

    steps: tuple[Step, ...]
    detectors: tuple[Detector, ...]
    # The steps and detectors as plain tuples, which run() unpacks faster per record than
    # it reads dataclass attributes. An attrgetter reads the state field faster than
    # getattr() with the field name, and it is None for a detector without state.
    _step_plan: tuple[tuple[str, StateGetter, StepFunction], ...] = field(init=False, repr=False)
    _detector_plan: tuple[DetectorPlan, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # object.__setattr__ because the dataclass is frozen.
        step_plan = tuple(
            (step.state_field, attrgetter(step.state_field), step.run) for step in self.steps
        )
        detector_plan = tuple(
            (
                d.name,
                d.state_field or "",
                None if d.state_field is None else attrgetter(d.state_field),
                d.detect,
            )
            for d in self.detectors
        )
        object.__setattr__(self, "_step_plan", step_plan)
        object.__setattr__(self, "_detector_plan", detector_plan)

    def run(
        self, vehicle: VehicleState, sample: Sample, settings: Settings
    ) -> Sequence[Event | Trip]:
        """Pass one new record through the chain, updating ``vehicle`` in place.

        Returns what the detectors emitted, NOTHING_EMITTED when they found nothing. A
        detector that raises is logged and skipped for this record, keeping its
        previous state, and the record carries on.
        """
        for step_field, get_step_state, run_step in self._step_plan:
            step_state = get_step_state(vehicle)
            new_step_state = run_step(step_state, sample, settings)
            if new_step_state is not step_state:
                setattr(vehicle, step_field, new_step_state)

        emitted: list[Event | Trip] | None = None
        for name, state_field, get_state, detect in self._detector_plan:
            if get_state is None:
                try:
                    found = detect(None, sample, settings)[1]
                except Exception:
                    _log_failure(name, sample)
                    continue
            else:
                state = get_state(vehicle)
                try:
                    new_state, found = detect(state, sample, settings)
                except Exception:
                    _log_failure(name, sample)
                    continue
                if new_state is not state:
                    setattr(vehicle, state_field, new_state)
            if found:
                if emitted is None:
                    emitted = list(found)
                else:
                    emitted.extend(found)

        assess_status(vehicle, sample, settings)
        return NOTHING_EMITTED if emitted is None else emitted


def build_chain(settings: Settings) -> Chain:
    """Build the chain for these settings. Raises ConfigError for an unknown disabled name."""
    steps = (
        Step("odometer", "odometer", check_odometer),
        Step("motion", "motion", measure_motion),
    )
    detectors = (
        Detector("gps_jump", None, detect_gps_jump),
        Detector("ignition", "ignition", detect_ignition),
        Detector("overspeed", "overspeed", detect_overspeed),
        Detector("harsh", "harsh", detect_harsh),
        Detector("idling", "idling", detect_idling),
        Detector("geofence", "geofence", geofence_detector(compile_geofences(settings.geofences))),
        Detector("engine_overheat", "overheat", detect_overheat),
        Detector("dtc", "dtc", detect_dtc),
        Detector("low_fuel", "low_fuel", detect_low_fuel),
        Detector("fuel_drop", "fuel_drop", detect_fuel_drop),
        Detector("low_battery", "low_battery", detect_low_battery),
        Detector("trip", "trip", detect_trip),
        Detector("maintenance", "maintenance", detect_maintenance),
    )

    disabled = set(settings.detectors.disabled)
    names = {detector.name for detector in detectors}
    unknown = disabled - names
    if unknown:
        raise ConfigError(
            f"invalid [detectors] disabled: unknown detectors {sorted(unknown)}. "
            f"Use names from: {', '.join(sorted(names))}"
        )
    # With no fences configured the geofence detector could never find anything.
    if not settings.geofences:
        disabled.add("geofence")
    if not has_service_intervals(settings):
        disabled.add("maintenance")
    return Chain(steps, tuple(d for d in detectors if d.name not in disabled))


# Detector failures are logged at the 1st, 10th, 100th, ... occurrence per detector, so a
# detector that fails on every record cannot flood the log.
_failures: dict[str, int] = {}


def _log_failure(name: str, sample: Sample) -> None:
    count = _failures.get(name, 0) + 1
    _failures[name] = count
    if _is_power_of_ten(count):
        log.exception(
            "detector failed, record kept without it: detector=%s vehicle=%s ts_ms=%s failures=%s",
            name,
            sample.record.device_id,
            sample.record.ts_ms,
            count,
        )


def _is_power_of_ten(count: int) -> bool:
    while count % 10 == 0:
        count //= 10
    return count == 1
