from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetpulse.errors import ConfigError
from fleetpulse.notify.rules import compile_rule
from tests.notify.conftest import make_event, make_rule

URL = "http://127.0.0.1:9/hook"


def at_utc(hour: int, minute: int = 0) -> int:
    """Return ts_ms of 2024-05-01 at this UTC time."""
    return int(datetime(2024, 5, 1, hour, minute, tzinfo=UTC).timestamp() * 1000)


def test_rule_empty_filters_match_all() -> None:
    rule = compile_rule(make_rule(webhook_url=URL))
    assert rule.matches(make_event(event_type="dtc", severity="info"))


@pytest.mark.parametrize(
    ("severity", "expected"), [("info", False), ("warning", True), ("critical", True)]
)
def test_rule_min_severity(severity: str, expected: bool) -> None:
    rule = compile_rule(make_rule(webhook_url=URL, min_severity="warning"))
    assert rule.matches(make_event(severity=severity)) is expected


def test_rule_event_type_filter() -> None:
    rule = compile_rule(make_rule(webhook_url=URL, event_types=["idling"]))
    assert rule.matches(make_event(event_type="idling"))
    assert not rule.matches(make_event(event_type="overspeed"))


def test_rule_vehicle_filter() -> None:
    rule = compile_rule(make_rule(webhook_url=URL, vehicles=["van-1"]))
    assert rule.matches(make_event(device_id="van-1"))
    assert not rule.matches(make_event(device_id="truck-7"))


def test_rule_geofence_filter() -> None:
    rule = compile_rule(make_rule(webhook_url=URL, geofences=["depot"]))
    assert rule.matches(make_event(event_type="geofence_enter", geofences=["depot", "city"]))
    assert not rule.matches(make_event(event_type="geofence_enter", geofences=["city"]))
    assert not rule.matches(make_event(event_type="overspeed"))


@pytest.mark.parametrize(
    ("hour", "expected"), [(21, False), (22, True), (23, True), (2, True), (5, True), (6, False)]
)
def test_rule_window_wraps_midnight(hour: int, expected: bool) -> None:
    rule = compile_rule(make_rule(webhook_url=URL, active_from="22:00", active_to="06:00"))
    assert rule.matches(make_event(ts_ms=at_utc(hour))) is expected


@pytest.mark.parametrize(("hour", "expected"), [(7, False), (8, True), (16, True), (17, False)])
def test_rule_window_within_day(hour: int, expected: bool) -> None:
    rule = compile_rule(make_rule(webhook_url=URL, active_from="08:00", active_to="17:00"))
    assert rule.matches(make_event(ts_ms=at_utc(hour))) is expected


def test_rule_window_in_timezone() -> None:
    rule = compile_rule(
        make_rule(webhook_url=URL, active_from="08:00", active_to="09:00", timezone="Europe/Berlin")
    )
    # Berlin is UTC+2 in May: 06:30 UTC is 08:30 there.
    assert rule.matches(make_event(ts_ms=at_utc(6, 30)))
    assert not rule.matches(make_event(ts_ms=at_utc(8, 30)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"webhook_url": URL, "event_types": ["speeding"]}, "unknown event_types"),
        ({}, "set webhook_url, email_to or both"),
        ({"webhook_url": "ftp://host/x"}, "must start with http"),
        ({"webhook_url": URL, "timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"webhook_url": URL, "active_from": "22:00"}, "set both active_from"),
        ({"webhook_url": URL, "active_from": "25:00", "active_to": "06:00"}, "HH:MM"),
        ({"webhook_url": URL, "active_from": "6:00", "active_to": "08:00"}, "HH:MM"),
        ({"webhook_url": URL, "active_from": "06:00", "active_to": "06:00"}, "are equal"),
        ({"webhook_url": URL, "throttle_s": -1.0}, "throttle_s"),
        ({"webhook_url": URL, "id": "a/b"}, "without '/'"),
    ],
)
def test_rule_invalid_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_rule(make_rule(**fields))
