"""Kill a server with SIGKILL many times under a paced fleet, then check the store.

The long form of ``tests/e2e/test_crash_random.py``: an HTTP fleet and a Teltonika fleet
send for ``--minutes`` minutes of wall time while the server is killed at random moments
(seeded) and restarted on the same ports. At the end it reports the kills survived, the
records checked, duplicates, events and trips against a run without kills of the same
fleet, and the server's peak resident memory. Exits 1 if any check fails.

    .venv/bin/python benchmarks/crash_soak.py --kills 30 --minutes 10 --json crash.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.crash_run import CrashOutcome, CrashPlan, run_with_kills  # noqa: E402

log = logging.getLogger("crash_soak")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs per run (default: 30)")
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="wall-clock minutes of sending at the fleet's pace (default: 10)")
    parser.add_argument("--vehicles", type=int, default=20, help="HTTP vehicles (default: 20)")
    parser.add_argument("--teltonika-vehicles", type=int, default=10,
                        help="Teltonika devices (default: 10)")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="time factor of the simulated fleet (default: 60)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the kill moments (default: a fresh one, printed)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the run without kills, and with it the event and trip check")
    parser.add_argument("--json", type=Path, help="write the outcome to this JSON file")
    parser.add_argument("--workdir", type=Path,
                        help="keep data and logs here (default: a temporary folder)")
    return parser.parse_args(argv)


def failures(outcome: CrashOutcome, reference: CrashOutcome | None) -> list[str]:
    """Return one line per failed check, empty when the run kept every guarantee."""
    found = []
    if any(code != 0 for code in outcome.simulator_exit_codes.values()):
        found.append(f"simulator exit codes {outcome.simulator_exit_codes}")
    if outcome.records_stored != outcome.records_generated:
        found.append(f"stored {outcome.records_stored} != generated {outcome.records_generated}")
    if any(outcome.duplicate_keys.values()):
        found.append(f"duplicate records {outcome.duplicate_keys}")
    if outcome.events_found != outcome.events_expected:
        found.append("injected events differ from the simulator's truth")
    if outcome.duplicate_events:
        found.append(f"{outcome.duplicate_events} duplicate events")
    if reference is not None and outcome.all_events != reference.all_events:
        found.append("events differ from the run without kills")
    if reference is not None and outcome.trips != reference.trips:
        found.append("trips differ from the run without kills")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # One line per API request of the final check would bury the harness's own lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    duration_s = int(args.minutes * 60 * args.speed)
    # Spread the kills over the run: the mean gap is the run's length over the kills.
    mean_gap_s = args.minutes * 60 / max(1, args.kills)
    plan = CrashPlan(
        seed=seed, max_kills=args.kills, http_vehicles=args.vehicles,
        teltonika_vehicles=args.teltonika_vehicles, duration_s=duration_s, speed=args.speed,
        kill_gap_s=(0.3 * mean_gap_s, 1.5 * mean_gap_s),
    )
    log.info("crash soak seed=%d kills=%d duration_s=%d speed=%s", seed, args.kills,
             duration_s, args.speed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fleetpulse-crash-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)

    reference = None
    if not args.no_reference:
        (workdir / "reference").mkdir(exist_ok=True)
        reference_plan = CrashPlan(**{**vars(plan), "max_kills": 0})
        reference = run_with_kills(workdir / "reference", reference_plan)
    (workdir / "kills").mkdir(exist_ok=True)
    outcome = run_with_kills(workdir / "kills", plan)

    report = outcome.to_json()
    report["failures"] = failures(outcome, reference)
    if reference is not None:
        report["reference_peak_rss_kib"] = reference.peak_rss_kib
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
