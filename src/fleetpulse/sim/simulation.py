"""``simulate()``: run a fleet against an ingest server and write the ground truth."""

from __future__ import annotations

import logging
import math
import time

import msgspec

from fleetpulse.sim.badrecords import FUTURE_MARGIN_MS
from fleetpulse.sim.clock import timeline_start_ms, wall_end_ms
from fleetpulse.sim.fleet import Fleet
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.pacing import Pacer, ProgressCallback, reporting
from fleetpulse.sim.transports import adapt_options, open_transport
from fleetpulse.sim.transports.base import Transport
from fleetpulse.sim.truth import DUPLICATE, TruthLog, TruthSummary

log = logging.getLogger(__name__)


class SimulationSummary(msgspec.Struct):
    """Totals of a simulation run. ``speed`` is a number or ``"max"``.

    ``records_sent`` counts every record in a request the server responded to: good
    ones, bad ones and duplicates. ``end_ms`` is the device time of the last tick.
    """

    url: str
    vehicles: int
    rate_hz: float
    duration_s: float
    speed: float | str
    seed: int
    start_ms: int
    end_ms: int
    records_generated: int
    records_sent: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    retries: int
    request_errors: int
    bad_records_injected: int
    bad_records_by_reason: dict[str, int]
    duplicates_injected: int
    elapsed_s: float
    rate_rps: float
    truth_path: str | None
    # Acknowledgement latency of the requests, client side; None when nothing was acked.
    ack_p50_ms: float | None = None
    ack_p99_ms: float | None = None
    ack_p999_ms: float | None = None


async def simulate(
    options: SimulationOptions, on_progress: ProgressCallback | None = None
) -> SimulationSummary:
    """Simulate ``options.vehicles`` vehicles and send their records to ``options.url``.

    Raises ServerUnreachableError before anything is generated if the server does not
    accept connections, and DeliveryError if a batch cannot be delivered in time. The
    truth file gets its summary line even when the run fails or is cancelled.
    """
    options = adapt_options(options)
    sender = open_transport(options)
    truth_log: TruthLog | None = None
    fleet: Fleet | None = None
    try:
        await sender.probe()
        await sender.start()
        truth_log = TruthLog(options.truth_path)
        now_ms = time.time_ns() // 1_000_000
        clock_start_s = time.monotonic()
        start_ms = timeline_start_ms(now_ms, options.duration_s, options.speed)
        end_of_run_ms = wall_end_ms(now_ms, options.duration_s, options.speed)
        future_ms = max(start_ms + round(options.duration_s * 1000), end_of_run_ms)
        fleet = Fleet(options, start_ms, truth_log, future_ms + FUTURE_MARGIN_MS)
        log.info(
            "simulating %d vehicles at %s Hz for %s s of device time, speed %s, seed %d",
            options.vehicles,
            options.rate_hz,
            options.duration_s,
            options.speed,
            options.seed,
        )

        pacer = Pacer(sender, options.speed, options.duration_s)
        async with reporting(pacer, on_progress):
            await pacer.run(fleet.ticks(), clock_start_s)
        elapsed_s = time.monotonic() - clock_start_s
        summary = _summarise(options, sender, fleet, truth_log, elapsed_s)
        log.info(
            "simulation done: %d records sent, %d accepted, %d rejected in %.1f s",
            summary.records_sent,
            summary.accepted,
            summary.rejected,
            elapsed_s,
        )
        return summary
    finally:
        await sender.close()
        if truth_log is not None:
            summary_line = None
            if fleet is not None:
                summary_line = _truth_summary(options, sender, fleet, truth_log)
            truth_log.close(summary_line)


def _summarise(
    options: SimulationOptions,
    sender: Transport,
    fleet: Fleet,
    truth_log: TruthLog,
    elapsed_s: float,
) -> SimulationSummary:
    stats = sender.stats
    return SimulationSummary(
        url=options.url,
        vehicles=options.vehicles,
        rate_hz=options.rate_hz,
        duration_s=options.duration_s,
        speed="max" if math.isinf(options.speed) else options.speed,
        seed=options.seed,
        start_ms=fleet.start_ms,
        end_ms=fleet.last_ts_ms,
        records_generated=fleet.records_generated,
        records_sent=stats.records_sent,
        accepted=stats.accepted,
        rejected=stats.rejected,
        rejected_by_reason=dict(stats.rejected_by_reason),
        retries=stats.retries,
        request_errors=stats.request_errors,
        bad_records_injected=sum(truth_log.bad_by_reason.values()),
        bad_records_by_reason=dict(truth_log.bad_by_reason),
        duplicates_injected=truth_log.counts[DUPLICATE],
        elapsed_s=round(elapsed_s, 3),
        rate_rps=round(stats.records_sent / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        ack_p50_ms=stats.ack_percentile_ms(0.50),
        ack_p99_ms=stats.ack_percentile_ms(0.99),
        ack_p999_ms=stats.ack_percentile_ms(0.999),
        truth_path=options.truth_path,
    )


def _truth_summary(
    options: SimulationOptions, sender: Transport, fleet: Fleet, truth_log: TruthLog
) -> TruthSummary:
    return TruthSummary(
        seed=options.seed,
        vehicles=options.vehicles,
        rate_hz=options.rate_hz,
        duration_s=options.duration_s,
        start_ms=fleet.start_ms,
        end_ms=fleet.last_ts_ms,
        records_generated=fleet.records_generated,
        records_sent=sender.stats.records_sent,
        bad_records=sum(truth_log.bad_by_reason.values()),
        bad_records_by_reason=dict(truth_log.bad_by_reason),
        duplicates=truth_log.counts[DUPLICATE],
        entries_by_type=dict(truth_log.counts),
    )
