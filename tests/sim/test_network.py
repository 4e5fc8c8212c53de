"""The synthetic road network and the routes built on it."""

from __future__ import annotations

import math
import random

import pytest

from fleetpulse.sim.network import RING_NODES, RING_RADIUS_M, RoadNetwork, build_network
from fleetpulse.sim.route import MIN_TRIP_M, build_route, plan_city_trip, plan_highway_trip


@pytest.fixture(scope="module")
def network() -> RoadNetwork:
    return build_network()


def test_network_ring_is_closed(network: RoadNetwork) -> None:
    assert len(network.ring) == RING_NODES
    for k, node in enumerate(network.ring):
        following = network.ring[(k + 1) % RING_NODES]
        assert network.road_between(node, following).highway
        assert math.hypot(*network.xy[node]) == pytest.approx(RING_RADIUS_M)


def test_network_every_grid_node_reachable(network: RoadNetwork) -> None:
    start = network.grid_nodes[0]
    for goal in network.grid_nodes[1:]:
        path = network.shortest_path(start, goal)
        assert path[0] == start
        assert path[-1] == goal


def test_network_has_traffic_lights(network: RoadNetwork) -> None:
    lit = sum(network.lit)

    assert 10 < lit < len(network.grid_nodes) // 2


def test_network_ramps_join_grid_and_ring(network: RoadNetwork) -> None:
    assert len(network.ramps) == 4
    for ramp in network.ramps:
        road = network.road_between(ramp.grid_node, network.ring[ramp.ring_index])
        assert not road.highway


def test_route_right_turn_slows_to_about_20_kmh(network: RoadNetwork) -> None:
    # Three grid nodes: east along a street, then north.
    a, b = network.grid_nodes[14], network.grid_nodes[27]
    c = next(road.to for road in network.roads[b] if network.xy[road.to][1] > network.xy[b][1])
    route = build_route(network, [a, b, c], speed_factor=1.0)

    assert route.cap_ms[1] * 3.6 == pytest.approx(19.7, abs=1.0)
    assert route.cap_ms[-1] == 0.0
    assert route.cap_ms[0] == math.inf


def test_route_straight_on_needs_no_slowing(network: RoadNetwork) -> None:
    nodes = network.grid_nodes[0:3]
    route = build_route(network, nodes, speed_factor=1.0)

    assert route.cap_ms[1] == math.inf
    assert route.length_m == pytest.approx(1000.0)


def test_route_city_trip_long_enough(network: RoadNetwork) -> None:
    rng = random.Random(1)
    for _ in range(20):
        start = rng.choice(network.grid_nodes)
        nodes = plan_city_trip(network, start, rng)
        assert math.dist(network.xy[nodes[0]], network.xy[nodes[-1]]) >= MIN_TRIP_M


def test_route_highway_trip_uses_ring(network: RoadNetwork) -> None:
    rng = random.Random(2)
    start = rng.choice(network.grid_nodes)
    route = build_route(network, plan_highway_trip(network, start, rng), speed_factor=1.0)

    highway_m = sum(
        route.cum_m[i + 1] - route.cum_m[i]
        for i, on_highway in enumerate(route.highway)
        if on_highway
    )
    # One quarter of the ring at least. The 72-sided polygon is 0.03 % shorter than a circle.
    assert highway_m >= 2 * math.pi * RING_RADIUS_M / 4 * 0.999
    assert max(route.limit_ms) * 3.6 == pytest.approx(100.0)


def test_route_scales_limits_by_driver(network: RoadNetwork) -> None:
    nodes = network.grid_nodes[0:3]
    route = build_route(network, nodes, speed_factor=0.9)

    assert route.limit_ms[0] * 3.6 == pytest.approx(60.0 * 0.9)
