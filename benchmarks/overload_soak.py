"""Offer a surge far above the sustainable rate, then check memory, back-pressure and loss.

The long form of ``tests/e2e/test_overload.py``: surge clients post batches back to back
for ``--surge-s`` seconds and ignore Retry-After, while a paced HTTP fleet and a
Teltonika fleet send as usual. It reports the responses by status and code, the
offered and acknowledged rates, the server's resident memory when idle and at its peak,
and the records lost (acknowledged but not stored). Exits 1 if a check fails.

    .venv/bin/python benchmarks/overload_soak.py --surge-s 120 --json overload.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.overload_run import OverloadOutcome, OverloadPlan, run_overload  # noqa: E402

MIB = 1024 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--surge-s", type=float, default=120.0,
                        help="seconds of surge (default: 120)")
    parser.add_argument("--surge-clients", type=int, default=64,
                        help="concurrent surge connections (default: 64)")
    parser.add_argument("--surge-batch-records", type=int, default=1000,
                        help="records per surge request (default: 1000)")
    parser.add_argument("--max-inflight-mib", type=float, default=64.0,
                        help="[ingest] max_inflight_bytes of the server, in MiB (default: 64)")
    parser.add_argument("--capacity-records", type=int, default=2_000_000,
                        help="[queue] capacity_records of the server (default: 2000000)")
    parser.add_argument("--json", type=Path, help="write the outcome to this JSON file")
    parser.add_argument("--workdir", type=Path,
                        help="keep data and logs here (default: a temporary folder)")
    return parser.parse_args(argv)


def failures(outcome: OverloadOutcome) -> list[str]:
    """Return one line per failed check, empty when the run kept every guarantee."""
    found = []
    if not outcome.server_alive_after_surge:
        found.append("the server died during the surge")
    if outcome.missing_retry_after:
        found.append(f"{outcome.missing_retry_after} responses 503 without Retry-After")
    if outcome.surge_missing:
        found.append(f"{outcome.surge_missing} acknowledged surge records not stored")
    if any(code != 0 for code in outcome.simulator_exit_codes.values()):
        found.append(f"simulator exit codes {outcome.simulator_exit_codes}")
    if outcome.records_stored != outcome.records_generated:
        found.append(f"stored {outcome.records_stored} != generated {outcome.records_generated}")
    unexpected = set(outcome.statuses) - {"202", "503 queue_full", "503 overloaded"}
    if unexpected:
        found.append(f"unexpected responses {sorted(unexpected)}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # One line per API request of the final check would bury the harness's own lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The fleet sends for the whole surge and a while after it.
    fleet_minutes = args.surge_s / 60 + 1
    plan = OverloadPlan(
        surge_s=args.surge_s, surge_clients=args.surge_clients,
        surge_batch_records=args.surge_batch_records,
        max_inflight_bytes=int(args.max_inflight_mib * MIB),
        capacity_records=args.capacity_records, duration_s=int(fleet_minutes * 60 * 60),
    )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fleetpulse-overload-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    outcome = run_overload(workdir, plan)
    report = outcome.to_json()
    report["failures"] = failures(outcome)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
