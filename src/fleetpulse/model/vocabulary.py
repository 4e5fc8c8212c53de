"""The words of the domain, defined once: reason codes, event types, motion and status."""

from typing import Final

# Reject reason codes, returned to devices and counted in metrics.
MISSING_FIELD: Final = "missing_field"
INVALID_TYPE: Final = "invalid_type"
OUT_OF_RANGE: Final = "out_of_range"
NOT_FINITE: Final = "not_finite"
TS_IN_FUTURE: Final = "ts_in_future"
TS_TOO_OLD: Final = "ts_too_old"
TS_NO_TIMEZONE: Final = "ts_no_timezone"
TS_INVALID: Final = "ts_invalid"
INVALID_DEVICE_ID: Final = "invalid_device_id"
UNKNOWN_FIELD: Final = "unknown_field"
TOO_LARGE: Final = "too_large"
INVALID_JSON: Final = "invalid_json"
UNSUPPORTED_MEDIA_TYPE: Final = "unsupported_media_type"
# A device protocol frame that cannot be decoded (bad preamble, CRC or record counts).
INVALID_FRAME: Final = "invalid_frame"
# With [auth] enabled: a device request without a valid device token, and a record of a
# device that neither its token nor the key file covers.
UNAUTHORIZED: Final = "unauthorized"
DEVICE_NOT_ALLOWED: Final = "device_not_allowed"
# Records over the per-device limit [ingest] device_rate_records_per_s.
RATE_LIMITED: Final = "rate_limited"

REJECT_REASONS: Final = (
    MISSING_FIELD,
    INVALID_TYPE,
    OUT_OF_RANGE,
    NOT_FINITE,
    TS_IN_FUTURE,
    TS_TOO_OLD,
    TS_NO_TIMEZONE,
    TS_INVALID,
    INVALID_DEVICE_ID,
    UNKNOWN_FIELD,
    TOO_LARGE,
    INVALID_JSON,
    UNSUPPORTED_MEDIA_TYPE,
    INVALID_FRAME,
    UNAUTHORIZED,
    DEVICE_NOT_ALLOWED,
    RATE_LIMITED,
)

# Error codes of ingest responses that are not reject reasons, because nothing was wrong
# with the request. internal_error is a bug, and the others are retriable: queue_full
# (the queue is at capacity), overloaded (ingest.max_inflight_bytes of requests are in
# progress), storage_full (the disk of the queue is full) and unavailable (another
# backend failure).
ERROR_QUEUE_FULL: Final = "queue_full"
ERROR_OVERLOADED: Final = "overloaded"
ERROR_STORAGE_FULL: Final = "storage_full"
ERROR_UNAVAILABLE: Final = "unavailable"
ERROR_INTERNAL: Final = "internal_error"

# Motion states of a vehicle.
MOVING: Final = "moving"
IDLE: Final = "idle"
PARKED: Final = "parked"
OFFLINE: Final = "offline"

# Record and vehicle status levels, in increasing order of urgency.
NORMAL: Final = "normal"
WARNING: Final = "warning"
ALERT: Final = "alert"

# Event severities.
INFO: Final = "info"
SEVERITY_WARNING: Final = "warning"
CRITICAL: Final = "critical"

# Event types.
OVERSPEED: Final = "overspeed"
HARSH_BRAKING: Final = "harsh_braking"
HARSH_ACCELERATION: Final = "harsh_acceleration"
IDLING: Final = "idling"
IGNITION_ON: Final = "ignition_on"
IGNITION_OFF: Final = "ignition_off"
GEOFENCE_ENTER: Final = "geofence_enter"
GEOFENCE_EXIT: Final = "geofence_exit"
ENGINE_OVERHEAT: Final = "engine_overheat"
DTC: Final = "dtc"
LOW_FUEL: Final = "low_fuel"
FUEL_DROP: Final = "fuel_drop"
LOW_BATTERY: Final = "low_battery"
GPS_JUMP: Final = "gps_jump"
OFFLINE_EVENT: Final = "offline"
TRIP_START: Final = "trip_start"
TRIP_END: Final = "trip_end"
MAINTENANCE_DUE: Final = "maintenance_due"

EVENT_TYPES: Final = (
    OVERSPEED,
    HARSH_BRAKING,
    HARSH_ACCELERATION,
    IDLING,
    IGNITION_ON,
    IGNITION_OFF,
    GEOFENCE_ENTER,
    GEOFENCE_EXIT,
    ENGINE_OVERHEAT,
    DTC,
    LOW_FUEL,
    FUEL_DROP,
    LOW_BATTERY,
    GPS_JUMP,
    OFFLINE_EVENT,
    TRIP_START,
    TRIP_END,
    MAINTENANCE_DUE,
)

# Event detail key of the events emitted again when their episode ends (overspeed, harsh
# braking and acceleration, fuel drop). It is True in the copies emitted while the episode
# runs and False in the final copy.
DETAIL_ONGOING: Final = "ongoing"

# Severities in increasing order, for rules that ask for a minimum severity.
SEVERITY_ORDER: Final = (INFO, SEVERITY_WARNING, CRITICAL)

# Flags set on an enriched record.
FLAG_NO_FIX: Final = "no_fix"
FLAG_GPS_JUMP: Final = "gps_jump"
# Set beside gps_jump on the jump that returns to the position before a jump, which
# ends that outlier. The gps_jump detector reports the outlier once, at the jump away.
FLAG_GPS_JUMP_BACK: Final = "gps_jump_back"
FLAG_LATE: Final = "late"
FLAG_ODOMETER_GLITCH: Final = "odometer_glitch"

# Sources a record can arrive through.
SOURCE_HTTP: Final = "http"
SOURCE_TELTONIKA: Final = "teltonika"
SOURCE_OSMAND: Final = "osmand"
SOURCE_MQTT: Final = "mqtt"
