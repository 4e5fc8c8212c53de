"""The vehicle view for the query API, built from the processing state."""

from __future__ import annotations

from collections.abc import Sequence

from fleetpulse.model.record import EnrichedRecord
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import OFFLINE
from fleetpulse.process.state import Readings, VehicleState


def update_readings(readings: Readings, records: Sequence[EnrichedRecord]) -> Readings:
    """Return the readings after a run of new records, oldest first.

    Each device value is the newest one reported, and the assessment is the newest record's.
    """
    if not records:
        return readings
    speed_kmh = readings.speed_kmh
    heading_deg = readings.heading_deg
    engine_rpm = readings.engine_rpm
    coolant_c = readings.coolant_c
    fuel_pct = readings.fuel_pct
    battery_v = readings.battery_v
    for enriched in records:
        record = enriched.record
        if enriched.speed_kmh is not None:
            speed_kmh = enriched.speed_kmh
        if record.heading_deg is not None:
            heading_deg = record.heading_deg
        if record.engine_rpm is not None:
            engine_rpm = record.engine_rpm
        if record.coolant_c is not None:
            coolant_c = record.coolant_c
        if record.fuel_pct is not None:
            fuel_pct = record.fuel_pct
        if record.battery_v is not None:
            battery_v = record.battery_v

    newest = records[-1]
    return Readings(
        motion=newest.motion,
        status=newest.status,
        reasons=tuple(newest.reasons),
        speed_kmh=speed_kmh,
        heading_deg=heading_deg,
        engine_rpm=engine_rpm,
        coolant_c=coolant_c,
        fuel_pct=fuel_pct,
        battery_v=battery_v,
    )


def build_view(vehicle: VehicleState) -> VehicleView:
    """Build the view of a vehicle that has at least one processed or late record.

    An offline vehicle shows motion ``offline``.
    """
    readings = vehicle.readings
    motion = vehicle.motion
    trip = vehicle.trip
    offline = vehicle.offline.offline
    maintenance = vehicle.maintenance
    return VehicleView(
        device_id=vehicle.device_id,
        last_ts_ms=vehicle.last_ts_ms if vehicle.last_ts_ms is not None else 0,
        last_received_at_ms=vehicle.last_received_at_ms,
        motion=OFFLINE if offline else readings.motion,
        status=readings.status,
        reasons=list(readings.reasons),
        lat=motion.fix_lat,
        lon=motion.fix_lon,
        fix_ts_ms=motion.fix_ts_ms,
        speed_kmh=readings.speed_kmh,
        heading_deg=readings.heading_deg,
        ignition=motion.ignition,
        engine_rpm=readings.engine_rpm,
        coolant_c=readings.coolant_c,
        fuel_pct=readings.fuel_pct,
        battery_v=readings.battery_v,
        odometer_m=vehicle.odometer.good_m,
        dtc=list(vehicle.dtc.active),
        geofences=list(vehicle.geofence.inside),
        offline=offline,
        trip_distance_m=trip.distance_m if trip.start_ms is not None and trip.started else None,
        maintenance_due=maintenance.due,
        service_in_km=maintenance.remaining_km,
        service_in_engine_h=maintenance.remaining_engine_h,
    )
