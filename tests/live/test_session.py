"""LiveSession and LiveFilter: coalescing, bounds, deduplication and parameter checks."""

from __future__ import annotations

import pytest

from fleetpulse.live.filters import (
    LiveFilter,
    LiveRequestError,
    parse_query_filter,
    parse_subscribe,
)
from fleetpulse.live.session import CLOSE_TRY_AGAIN_LATER, LiveEvent, LiveSession
from fleetpulse.model.vehicle import VehicleView


def view(device_id: str, last_ts_ms: int, lat: float = 48.1, lon: float = 11.5) -> VehicleView:
    return VehicleView(device_id, last_ts_ms, last_ts_ms, "moving", "normal", lat=lat, lon=lon)


def event(event_id: int, is_update: bool = False, event_type: str = "ignition_on") -> LiveEvent:
    return LiveEvent(event_id, "truck-1", event_type, is_update, b"{}")


def session(max_buffered_events: int = 10) -> LiveSession:
    return LiveSession(LiveFilter(), 1.0, max_buffered_events, "test")


def test_views_coalesce_to_newest() -> None:
    live = session()
    for ts_ms in (1000, 2000, 3000):
        live.offer_view(view("truck-1", ts_ms))
    live.offer_view(view("truck-2", 1500))
    taken = {v.device_id: v.last_ts_ms for v in live.take_views()}
    assert taken == {"truck-1": 3000, "truck-2": 1500}
    assert live.take_views() == []


def test_event_bound_requests_close() -> None:
    live = session(max_buffered_events=3)
    for event_id in range(1, 6):
        live.offer_event(event(event_id))
    assert live.close_code == CLOSE_TRY_AGAIN_LATER
    assert live.stopped.is_set()
    assert len(live.events) == 0


def test_take_events_skips_sent() -> None:
    live = session()
    live.sent_through_id = 2
    for item in (event(1), event(2), event(2, is_update=True), event(3)):
        live.offer_event(item)
    taken = [(e.id, e.is_update) for e in live.take_events(10)]
    assert taken == [(2, True), (3, False)]


def test_take_events_limit() -> None:
    live = session()
    for event_id in range(1, 6):
        live.offer_event(event(event_id))
    assert [e.id for e in live.take_events(2)] == [1, 2]
    assert [e.id for e in live.take_events(10)] == [3, 4, 5]


def test_set_filter_drops_excluded() -> None:
    live = session()
    live.offer_view(view("truck-1", 1000))
    live.offer_view(view("truck-2", 1000))
    live.offer_event(event(1, event_type="ignition_on"))
    live.offer_event(event(2, event_type="ignition_off"))
    live.set_filter(
        LiveFilter(device_ids=frozenset({"truck-1"}), types=frozenset({"ignition_off"}))
    )
    assert [v.device_id for v in live.take_views()] == ["truck-1"]
    assert [e.id for e in live.take_events(10)] == [2]


def test_bbox_excludes_no_position() -> None:
    live_filter = parse_query_filter({"bbox": "11,48,12,49"})
    no_fix = VehicleView("truck-1", 1, 1, "parked", "normal")
    assert live_filter.matches_view(view("truck-1", 1, lat=48.5, lon=11.5))
    assert not live_filter.matches_view(view("truck-1", 1, lat=47.5, lon=11.5))
    assert not live_filter.matches_view(no_fix)


def test_query_filter_parses_lists() -> None:
    live_filter = parse_query_filter({"device_id": "a, b", "types": "overspeed,dtc"})
    assert live_filter.device_ids == frozenset({"a", "b"})
    assert live_filter.types == frozenset({"overspeed", "dtc"})
    assert live_filter.bbox is None


def test_subscribe_without_keys_clears() -> None:
    assert parse_subscribe('{"type": "subscribe"}') == LiveFilter()


@pytest.mark.parametrize(
    "query",
    [{"bbox": "1,2,3"}, {"bbox": "0,95,1,96"}, {"bbox": "a,b,c,d"}, {"types": "speeding"}],
)
def test_query_filter_rejects(query: dict[str, str]) -> None:
    with pytest.raises(LiveRequestError):
        parse_query_filter(query)


@pytest.mark.parametrize("raw", ["-1", "x", "99999999999999999999999", "\uff11"])
def test_after_event_id_rejects(raw: str) -> None:
    from fleetpulse.live.filters import LiveRequestError, parse_after_event_id

    with pytest.raises(LiveRequestError):
        parse_after_event_id({"after_event_id": raw})
