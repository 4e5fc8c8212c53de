"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /openapi.json``.

Request and response schemas of the model structs come from msgspec, so the document
cannot drift from the structs; the response envelopes are written out here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from fleetpulse import __version__
from fleetpulse.config import NotifyRule
from fleetpulse.model.event import Trip
from fleetpulse.model.record import RecordIn
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import EVENT_TYPES, REJECT_REASONS
from fleetpulse.notify.notifier import CHANNEL_EMAIL, CHANNEL_WEBHOOK
from fleetpulse.web.openapi import web_paths

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": _json_content(schema)}


_ERROR = _response("An error, with a message that names the next step", _ref("Error"))

_TIME_PARAM_DOC = "Epoch milliseconds or RFC 3339 with an offset."


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_DEVICE_PATH = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"}}
_FROM = _query(
    "from",
    "Start of the range (inclusive). " + _TIME_PARAM_DOC + " Default: 24 h ago.",
    {"type": "string"},
)
_TO = _query(
    "to",
    "End of the range (exclusive). " + _TIME_PARAM_DOC + " Default: 24 h ahead.",
    {"type": "string"},
)


def _limit(default: int, maximum: int) -> dict[str, Any]:
    return _query(
        "limit",
        f"At most this many items (default {default}).",
        {"type": "integer", "minimum": 1, "maximum": maximum},
    )


def _list_of(key: str, item: dict[str, Any], paged: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "count": {"type": "integer"},
        key: {"type": "array", "items": item},
    }
    if paged:
        properties["next"] = {
            "type": ["string", "null"],
            "description": "Path of the next page, null on the last one.",
        }
    return {"type": "object", "properties": properties, "required": ["count", key]}


def _components() -> dict[str, Any]:
    (record_in, vehicle, trip), components = msgspec.json.schema_components(
        [RecordIn, VehicleView, Trip], ref_template=_REF + "{name}"
    )
    components["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    }
    components["IngestResult"] = {
        "type": "object",
        "properties": {
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "reason": {"type": "string", "enum": list(REJECT_REASONS)},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
        "required": ["accepted", "rejected", "errors"],
    }
    components["Event"] = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "device_id": {"type": "string"},
            "type": {"type": "string", "enum": list(EVENT_TYPES)},
            "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
            "ts_ms": {"type": "integer"},
            "ts": {"type": "string"},
            "details": {"type": "object"},
        },
        "required": ["id", "device_id", "type", "severity", "ts_ms", "ts", "details"],
    }
    components["Position"] = {
        "type": "object",
        "description": "A stored record with its enrichment: distance_m from the previous "
        "fix, motion, status with reasons, flags, and speed_kmh used by the detectors "
        "(reported_speed_kmh is what the device sent).",
        "properties": {
            "device_id": {"type": "string"},
            "ts_ms": {"type": "integer"},
            "ts": {"type": "string"},
            "lat": {"type": "number"},
            "lon": {"type": "number"},
            "motion": {"type": "string"},
            "status": {"type": "string"},
            "distance_m": {"type": "number"},
        },
        "additionalProperties": True,
    }
    components["DeadLetter"] = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "received_at_ms": {"type": "integer"},
            "reason": {"type": "string"},
            "detail": {"type": "string"},
            "source": {"type": "string"},
            "raw": {"type": "string"},
            "device_id": {"type": ["string", "null"]},
            "index": {"type": ["integer", "null"]},
        },
    }
    components["FleetSummary"] = {
        "type": "object",
        "properties": {
            "generated_at": {"type": "string"},
            "vehicles": {"type": "object", "additionalProperties": {"type": "integer"}},
            "events_last_hour": {"type": "object", "additionalProperties": {"type": "integer"}},
            "alerts_last_hour": {"type": "integer"},
            "distance_today_m": {"type": "number"},
            "top_alert_vehicles": {"type": "array", "items": {"type": "object"}},
        },
    }
    components["Health"] = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "failing"]},
            "problems": {"type": "array", "items": {"type": "string"}},
            "queue_depth_records": {"type": ["integer", "null"]},
        },
    }
    del record_in, vehicle, trip
    return components


def _paths() -> dict[str, Any]:
    record_or_batch = {"oneOf": [_ref("RecordIn"), {"type": "array", "items": _ref("RecordIn")}]}
    return {
        "/v1/telemetry": {
            "post": {
                "summary": "Ingest records",
                "description": "One record, a JSON array of records, or NDJSON. Valid records are "
                "acknowledged (202) only once durable in the queue; each invalid one is reported "
                "with a reason code and kept as a dead letter.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": record_or_batch},
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "202": _response(
                        "Records accepted (some may be rejected)", _ref("IngestResult")
                    ),
                    "400": _ERROR,
                    "408": _response(
                        "The body did not arrive within [ingest] body_timeout_s", _ref("Error")
                    ),
                    "413": _ERROR,
                    "415": _ERROR,
                    "503": _response("Queue full: retry after Retry-After seconds", _ref("Error")),
                },
            }
        },
        "/v1/vehicles": {
            "get": {
                "summary": "Latest state of every vehicle",
                "responses": {
                    "200": _response("Vehicles", _list_of("vehicles", _ref("VehicleView")))
                },
            }
        },
        "/v1/vehicles/{device_id}": {
            "get": {
                "summary": "Latest state of one vehicle",
                "parameters": [_DEVICE_PATH],
                "responses": {"200": _response("The vehicle", _ref("VehicleView")), "404": _ERROR},
            }
        },
        "/v1/vehicles/{device_id}/positions": {
            "get": {
                "summary": "A vehicle's records in a time range, oldest first",
                "parameters": [_DEVICE_PATH, _FROM, _TO, _limit(1000, 10_000)],
                "responses": {
                    "200": _response(
                        "Positions", _list_of("positions", _ref("Position"), paged=True)
                    ),
                    "400": _ERROR,
                },
            }
        },
        "/v1/vehicles/{device_id}/trips": {
            "get": {
                "summary": "A vehicle's trips that started in a time range",
                "parameters": [_DEVICE_PATH, _FROM, _TO],
                "responses": {
                    "200": _response("Trips", _list_of("trips", _ref("Trip"))),
                    "400": _ERROR,
                },
            }
        },
        "/v1/events": {
            "get": {
                "summary": "Events: newest first, or oldest first after an id",
                "parameters": [
                    _query("device_id", "Only this vehicle's events.", {"type": "string"}),
                    _query(
                        "type",
                        "Only events of this type.",
                        {"type": "string", "enum": list(EVENT_TYPES)},
                    ),
                    _FROM,
                    _TO,
                    _limit(100, 10_000),
                    _query(
                        "after_id",
                        "Only events with a larger id, oldest first: "
                        "resume with the last id seen and nothing is skipped.",
                        {"type": "integer", "minimum": 0},
                    ),
                ],
                "responses": {
                    "200": _response("Events", _list_of("events", _ref("Event"), paged=True)),
                    "400": _ERROR,
                },
            }
        },
        "/v1/fleet/summary": {
            "get": {
                "summary": "Vehicles by motion, events in the last hour, distance today",
                "responses": {"200": _response("Summary", _ref("FleetSummary"))},
            }
        },
        **_report_paths(),
        **_notify_paths(),
        "/v1/dead-letters": {
            "get": {
                "summary": "Rejected records and requests: newest first, "
                "or oldest first after an id",
                "parameters": [
                    _limit(100, 10_000),
                    _query(
                        "after_id",
                        "Only dead letters with a larger id, oldest first.",
                        {"type": "integer", "minimum": 0},
                    ),
                ],
                "responses": {
                    "200": _response("Dead letters", _list_of("dead_letters", _ref("DeadLetter"))),
                    "400": _ERROR,
                },
            }
        },
        "/v1/live": {
            "get": {
                "summary": "WebSocket stream of vehicle views and events",
                "description": "Upgrade to a WebSocket; every frame is JSON text. The server "
                "sends hello first, then vehicles frames (the newest view of each changed "
                "vehicle, at most one frame per interval_s), events frames (every matching "
                "event in id order; an event may come again with updated details), lagging "
                "frames after skipped vehicle frames, and an error frame before it closes "
                "with 1008 (invalid parameter or message), 1013 (too many clients, or a "
                "client too slow for its events: resume with after_event_id) or 1001 "
                "(shutdown). The client may send "
                '{"type": "subscribe", "device_id": [...], "bbox": [...], "types": [...]} '
                "to replace its filters. OpenAPI cannot describe the frames; docs/api.md "
                "does.",
                "parameters": [
                    _query(
                        "device_id", "Comma-separated device ids to follow.", {"type": "string"}
                    ),
                    _query(
                        "bbox",
                        "min_lon,min_lat,max_lon,max_lat in degrees: only vehicles inside.",
                        {"type": "string"},
                    ),
                    _query("types", "Comma-separated event types to follow.", {"type": "string"}),
                    _query(
                        "interval_s",
                        "Seconds between vehicle frames (default [live] interval_s).",
                        {"type": "number", "minimum": 0.1, "maximum": 60},
                    ),
                    _query(
                        "after_event_id",
                        "Resume: first the stored events with a larger id, then live ones.",
                        {"type": "integer", "minimum": 0},
                    ),
                ],
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Health of every stage",
                "responses": {
                    "200": _response("Healthy", _ref("Health")),
                    "503": _response("A stage is failing", _ref("Health")),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": _json_content({"type": "object"}),
                    }
                },
            }
        },
    }


_REPORT_PARAMS = [
    {
        "name": "from",
        "in": "query",
        "required": True,
        "description": "First day of the report, YYYY-MM-DD, in the zone tz.",
        "schema": {"type": "string", "format": "date"},
    },
    _query(
        "to",
        "Last day of the report (included), YYYY-MM-DD. Default: the day from. "
        "At most 366 days in all.",
        {"type": "string", "format": "date"},
    ),
    _query(
        "tz",
        "IANA time zone of the day boundaries (default UTC). Each day must start on a "
        "whole UTC hour.",
        {"type": "string"},
    ),
    _query(
        "format",
        "json (default), csv or parquet. CSV and Parquet hold one table with a total row.",
        {"type": "string", "enum": ["json", "csv", "parquet"]},
    ),
]


def _report_answer(description: str) -> dict[str, Any]:
    return {
        "description": description + "; fields are described in docs/reports.md",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }


def _report_paths() -> dict[str, Any]:
    return {
        "/v1/reports/vehicles/{device_id}": {
            "get": {
                "summary": "A vehicle's driving figures per day and over a range of days",
                "parameters": [_DEVICE_PATH, *_REPORT_PARAMS],
                "responses": {
                    "200": _report_answer("The vehicle report"),
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/v1/reports/fleet": {
            "get": {
                "summary": "Every vehicle's driving figures over a range of days, with totals",
                "parameters": _REPORT_PARAMS,
                "responses": {"200": _report_answer("The fleet report"), "400": _ERROR},
            }
        },
    }


def _notify_rule_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the schema of a rule as posted, and as listed (secret replaced by a flag)."""
    posted: dict[str, Any] = msgspec.json.schema(NotifyRule)["$defs"]["NotifyRule"]
    listed = {**posted, "properties": dict(posted["properties"])}
    del listed["properties"]["webhook_secret"]
    listed["properties"]["webhook_secret_set"] = {"type": "boolean"}
    listed["properties"]["source"] = {"type": "string", "enum": ["config", "api"]}
    return posted, listed


def _notify_paths() -> dict[str, Any]:
    posted, listed = _notify_rule_schemas()
    rule_id = {"name": "rule_id", "in": "path", "required": True, "schema": {"type": "string"}}
    dead_letter = {
        "type": "object",
        "properties": {
            "failed_at_ms": {"type": "integer"},
            "failed_at": {"type": "string"},
            "rule_id": {"type": "string"},
            "channel": {"type": "string", "enum": [CHANNEL_WEBHOOK, CHANNEL_EMAIL]},
            "target": {"type": "string"},
            "device_id": {"type": "string"},
            "event_type": {"type": "string"},
            "event_ts_ms": {"type": "integer"},
            "attempts": {"type": "integer"},
            "error": {"type": "string"},
        },
    }
    unavailable = _response("Notifications do not run in this process", _ref("Error"))
    return {
        "/v1/notify/rules": {
            "get": {
                "summary": "Notification rules from the config file and the API",
                "responses": {
                    "200": _response("Rules", _list_of("rules", listed)),
                    "503": unavailable,
                },
            },
            "post": {
                "summary": "Add a notification rule, kept in the data folder",
                "requestBody": {"required": True, "content": _json_content(posted)},
                "responses": {
                    "201": _response("The rule as stored", listed),
                    "400": _ERROR,
                    "409": _response("The id is taken", _ref("Error")),
                    "413": _ERROR,
                    "503": unavailable,
                },
            },
        },
        "/v1/notify/rules/{rule_id}": {
            "delete": {
                "summary": "Delete a notification rule added through the API",
                "parameters": [rule_id],
                "responses": {
                    "204": {"description": "Deleted"},
                    "404": _ERROR,
                    "409": _response("A rule from the config file", _ref("Error")),
                    "503": unavailable,
                },
            }
        },
        "/v1/notify/dead-letters": {
            "get": {
                "summary": "Notifications given up after their last attempt, newest first",
                "parameters": [_limit(100, 10_000)],
                "responses": {
                    "200": _response("Dead letters", _list_of("dead_letters", dead_letter)),
                    "400": _ERROR,
                    "503": unavailable,
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """Build the OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fleetpulse",
            "version": __version__,
            "description": "Real-time vehicle telemetry: ingest records, query vehicles, "
            "positions, trips, events and fleet figures.",
        },
        "paths": _with_unmatched_path_404({**_paths(), **web_paths()}),
        "components": {"schemas": _components()},
    }


def _with_unmatched_path_404(paths: dict[str, Any]) -> dict[str, Any]:
    """Add a 404 to every operation whose path has a parameter.

    A parameter value that the router does not match, such as an id containing a line
    feed or a slash, gets the router's own 404 before any handler runs.
    """
    for path, operations in paths.items():
        if "{" not in path:
            continue
        for operation in operations.values():
            operation["responses"].setdefault(
                "404",
                _response(
                    "No route matches the path, for example because a parameter contains "
                    "a line feed or a slash",
                    _ref("Error"),
                ),
            )
    return paths
