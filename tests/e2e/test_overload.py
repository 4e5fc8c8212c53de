"""A surge far above what the server processes: 503 with Retry-After, bounded memory, no loss.

Surge clients post 1,000-record batches back to back and ignore Retry-After, while a
paced HTTP fleet and a Teltonika fleet send as usual. The server runs with a small
``ingest.max_inflight_bytes`` and ``queue.capacity_records``, so both kinds of
back-pressure respond during the surge.
"""

from __future__ import annotations

import pytest

from tests.e2e.overload_run import OverloadOutcome, OverloadPlan, run_overload

pytestmark = pytest.mark.slow

PLAN = OverloadPlan(max_inflight_bytes=1024 * 1024, capacity_records=50_000, surge_clients=48)
# Allowance over the resident memory of the idle server. Ingest keeps at most 1 MiB of
# bodies and their decoded records in memory. The rest is the processor's batch (up to
# `[queue] fetch_max_records`, 20,000 by default), SQLite page caches and allocator slack.
# Measured peak growth: 75 to 125 MiB (2 shared cores, other test suites running at the
# same time).
RSS_GROWTH_LIMIT_MIB = 200


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> OverloadOutcome:
    result = run_overload(tmp_path_factory.mktemp("overload"), PLAN)
    print(result.to_json())
    return result


def test_overload_answers_back_pressure(outcome: OverloadOutcome) -> None:
    assert outcome.statuses["503 queue_full"] > 0, outcome.statuses
    assert outcome.statuses["503 overloaded"] > 0, outcome.statuses


def test_overload_only_expected_statuses(outcome: OverloadOutcome) -> None:
    expected = {"202", "503 queue_full", "503 overloaded"}
    assert set(outcome.statuses) <= expected, outcome.statuses


def test_overload_503_has_retry_after(outcome: OverloadOutcome) -> None:
    assert outcome.missing_retry_after == 0


def test_overload_server_survives(outcome: OverloadOutcome) -> None:
    assert outcome.server_alive_after_surge
    assert outcome.surge_timeouts == 0


def test_overload_memory_bounded(outcome: OverloadOutcome) -> None:
    growth_mib = (outcome.peak_rss_kib - outcome.baseline_rss_kib) / 1024
    assert growth_mib < RSS_GROWTH_LIMIT_MIB, outcome.to_json()


def test_overload_fleet_delivered_all(outcome: OverloadOutcome) -> None:
    assert outcome.simulator_exit_codes == {"http": 0, "teltonika": 0}
    assert outcome.records_stored == outcome.records_generated


def test_overload_acked_surge_stored(outcome: OverloadOutcome) -> None:
    assert outcome.surge_acked_records > 0
    assert outcome.surge_missing == 0


def test_overload_teltonika_acks_withheld(outcome: OverloadOutcome) -> None:
    # Packets that met a full queue got no record-count response, and the devices sent
    # them again. The fleet check above finds every record stored once.
    assert outcome.teltonika_queue_full > 0
