"""Merging the processor child's metrics into the parent's /metrics, family by family."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleetpulse import metrics
from fleetpulse.metrics import FamilySnapshot

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class FixedSource:
    """A remote source that returns the same snapshot every time."""

    def __init__(self, families: list[FamilySnapshot]) -> None:
        self.families = families

    def latest_families(self) -> list[FamilySnapshot]:
        return self.families

    async def fresh_families(self) -> list[FamilySnapshot]:
        return self.families


def _child_snapshot() -> list[FamilySnapshot]:
    return [
        FamilySnapshot(
            "fleetpulse_records_processed",
            "Records taken from the queue and written to the store.",
            "counter",
            "",
            [
                ("fleetpulse_records_processed_total", {}, 70.0),
                ("fleetpulse_records_processed_created", {}, 1.0),
            ],
        ),
        FamilySnapshot(
            "fleetpulse_vehicles_tracked",
            "Vehicles whose processing state is held in memory.",
            "gauge",
            "",
            [("fleetpulse_vehicles_tracked", {}, 12.0)],
        ),
        FamilySnapshot(
            "fleetpulse_queue_depth_records",
            "Records published to the queue and not yet acknowledged by processing.",
            "gauge",
            "",
            [("fleetpulse_queue_depth_records", {}, -500.0)],
        ),
        FamilySnapshot(
            "fleetpulse_database_full",
            "1 while the last commit to this SQLite file failed because its disk was full.",
            "gauge",
            "",
            [("fleetpulse_database_full", {"file": "/data/store.db"}, 1.0)],
        ),
    ]


def _values(text: str) -> dict[SampleKey, float]:
    values: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


async def test_merged_metrics_sum_and_owners() -> None:
    local = _values(generate_latest(metrics.REGISTRY).decode())
    source = FixedSource(_child_snapshot())
    metrics.add_remote_source(source)
    try:
        text = generate_latest(await metrics.merged_registry()).decode()
        full_files = metrics.database_full_files()
    finally:
        metrics.remove_remote_source(source)

    names = [family.name for family in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    merged = _values(text)
    processed = ("fleetpulse_records_processed_total", ())
    assert merged[processed] == local[processed] + 70.0
    created = ("fleetpulse_records_processed_created", ())
    assert merged[created] == 1.0
    assert merged[("fleetpulse_vehicles_tracked", ())] == 12.0
    depth = ("fleetpulse_queue_depth_records", ())
    assert merged[depth] == local[depth]
    assert merged[("fleetpulse_database_full", (("file", "/data/store.db"),))] == 1.0
    assert "/data/store.db" in full_files


async def test_merged_metrics_without_source() -> None:
    text = generate_latest(await metrics.merged_registry()).decode()

    assert _values(text) == _values(generate_latest(metrics.REGISTRY).decode())


def test_total_counters_keep_exited_totals() -> None:
    exited = metrics.total_counters(_child_snapshot() + _child_snapshot())

    assert [family.name for family in exited] == ["fleetpulse_records_processed"]
    samples = {name: value for name, _, value in exited[0].samples}
    assert samples["fleetpulse_records_processed_total"] == 140.0
    assert samples["fleetpulse_records_processed_created"] == 1.0
