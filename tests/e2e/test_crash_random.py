"""SIGKILL at random moments under paced HTTP and Teltonika fleets: nothing lost or doubled.

The same fleet runs twice, once without kills (the reference) and once with them. The
run with kills must store every generated record once, and the same events and trips as
the reference. The seed of the kill moments comes from FLEETPULSE_CRASH_SEED, or a fresh
one is drawn. It is printed and appears in every assertion message, so a failing run can
be repeated with ``FLEETPULSE_CRASH_SEED=<seed> pytest tests/e2e/test_crash_random.py``.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.e2e.crash_run import CrashOutcome, CrashPlan, run_with_kills

pytestmark = pytest.mark.slow

# About 60 s of sending (3,600 s of device time at 60x) with a kill every 2 to 6 s.
CI_PLAN_KILLS = 8
MIN_KILLS = 4


@pytest.fixture(scope="module")
def seed() -> int:
    chosen = int(os.environ.get("FLEETPULSE_CRASH_SEED") or random.SystemRandom().randrange(2**31))
    print(f"crash run seed={chosen}")
    return chosen


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, seed: int) -> CrashOutcome:
    return run_with_kills(tmp_path_factory.mktemp("reference"), CrashPlan(seed, max_kills=0))


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, seed: int) -> CrashOutcome:
    plan = CrashPlan(seed=seed, max_kills=CI_PLAN_KILLS)
    return run_with_kills(tmp_path_factory.mktemp("crash"), plan)


def _context(outcome: CrashOutcome) -> str:
    return f"seed={outcome.seed} kills at {[round(t, 1) for t in outcome.kill_times_s]} s"


def test_crash_kills_happened(outcome: CrashOutcome) -> None:
    assert outcome.kills >= MIN_KILLS, _context(outcome)


def test_crash_simulators_delivered_all(outcome: CrashOutcome) -> None:
    # A simulator exits 0 only once the server acknowledged every record it generated.
    assert outcome.simulator_exit_codes == {"http": 0, "teltonika": 0}, _context(outcome)


def test_crash_every_acked_record_stored(outcome: CrashOutcome) -> None:
    assert outcome.records_generated["http"] > 0, _context(outcome)
    assert outcome.records_stored == outcome.records_generated, _context(outcome)


def test_crash_no_duplicate_records(outcome: CrashOutcome) -> None:
    assert outcome.duplicate_keys == {"http": 0, "teltonika": 0}, _context(outcome)


def test_crash_events_match_truth(outcome: CrashOutcome) -> None:
    assert outcome.events_expected, "the run injected no behaviour; the test would prove nothing"
    assert outcome.events_found == outcome.events_expected, _context(outcome)


def test_crash_no_duplicate_events(outcome: CrashOutcome) -> None:
    assert outcome.duplicate_events == 0, _context(outcome)


def test_crash_events_match_reference(outcome: CrashOutcome, reference: CrashOutcome) -> None:
    assert reference.all_events, "the reference run has no event; the test would prove nothing"
    assert outcome.all_events == reference.all_events, _context(outcome)


def test_crash_trips_match_reference(outcome: CrashOutcome, reference: CrashOutcome) -> None:
    # Trips by vehicle and distance in metres: a trip split, merged or lost by a kill
    # changes the distances, not only the count.
    assert reference.trips, "the reference run drove no trip; the test would prove nothing"
    assert outcome.trips == reference.trips, _context(outcome)
