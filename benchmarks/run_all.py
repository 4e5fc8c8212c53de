"""Run the whole benchmark suite and write one Markdown report (and JSON) with a section per part.

The parts, in order (``suite_parts.py`` runs them):

- ``http``: the seven ``http_load.py`` scenarios (batches of 1000 and 100, one record per
  request, NDJSON, then batches of 1000 at 25 %, 50 % and 90 % of the sustained rate);
- ``stages``: the cost per record of decode, validate, enqueue, fetch, process, store;
- ``ceilings``: bare msgspec decoding, a bare batched SQLite insert and a trivial route on
  the same HTTP stack, each beside fleetpulse's figure for the same work, as a ratio;
- ``memory``: processor state per tracked vehicle at 1k, 10k and 100k vehicles;
- ``teltonika``: many Teltonika device connections;
- ``mqtt``: QoS 1 publishers through a Mosquitto that the part starts itself;
- ``distributed`` (only with ``--distributed`` or ``--only``): NATS JetStream and
  PostgreSQL, started by the part itself.

A part whose server binary is missing is skipped with a visible line, and a part that
fails does not stop the others. Progress goes to stderr, the report to stdout.

    .venv/bin/python benchmarks/run_all.py --markdown results.md --json results.json
    .venv/bin/python benchmarks/run_all.py --only http,ceilings
    .venv/bin/python benchmarks/run_all.py --smoke    # seconds per part, for CI
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from load_report import LoadReport
from suite_parts import (
    DEFAULT_PARTS,
    PART_NAMES,
    SCRIPT_PARTS,
    Section,
    SuiteOptions,
    environment_lines,
    estimate_s,
    run_ceilings,
    run_http,
)

log = logging.getLogger("run_all")

DEFAULT_DURATION_S = 20.0
SMOKE_DURATION_S = 2.0


class SuiteReport(msgspec.Struct):
    """The JSON output: when and where the suite ran, and one section per part."""

    started_at: str
    command: str
    smoke: bool
    duration_s: float
    environment: list[str]
    sections: list[Section]


def select_parts(only: str | None, skip: str | None, distributed: bool) -> list[str]:
    """Return the parts to run, in suite order. Raises ValueError on an unknown name."""
    chosen = set(_names(only, "--only")) if only else set(DEFAULT_PARTS)
    if distributed:
        chosen.add("distributed")
    chosen -= set(_names(skip, "--skip")) if skip else set()
    return [part for part in PART_NAMES if part in chosen]


def _names(text: str, option: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PART_NAMES]
    if unknown:
        raise ValueError(
            f"{option} names unknown part(s) {', '.join(unknown)}; choose from "
            f"{', '.join(PART_NAMES)}"
        )
    return names


def run_parts(parts: list[str], options: SuiteOptions) -> list[Section]:
    """Run each part in turn; a part that raises becomes a failed section."""
    sections: list[Section] = []
    http_reports: list[LoadReport] | None = None
    for number, part in enumerate(parts, start=1):
        print(f"\n### part {number}/{len(parts)}: {part} (estimate "
              f"{_duration(estimate_s(part, options))})", file=sys.stderr, flush=True)
        started_s = time.monotonic()
        try:
            if part == "http":
                section, http_reports = run_http(options)
            elif part == "ceilings":
                section = run_ceilings(options, http_reports)
            else:
                section = SCRIPT_PARTS[part](options)
        except Exception as exc:  # one broken part must not lose the others' results
            log.exception("benchmark part failed part=%s", part)
            section = Section(part, part, "failed", reason=f"{type(exc).__name__}: {exc}")
        section.seconds = time.monotonic() - started_s
        print(f"### part {part}: {section.status} in {_duration(section.seconds)}"
              + (f": {section.reason}" if section.reason else ""), file=sys.stderr, flush=True)
        sections.append(section)
    return sections


def render_markdown(report: SuiteReport) -> str:
    """Render the report: environment, one section per part, then the summary."""
    mode = "smoke run: checks that the harness works, says nothing about speed" if (
        report.smoke
    ) else f"{report.duration_s:g} s of load per row"
    out = [
        "# fleetpulse benchmark suite",
        "",
        f"Run at {report.started_at} with `{report.command}` ({mode}).",
        "",
        *report.environment,
        "",
    ]
    for section in report.sections:
        out += [f"## {section.title}", ""]
        if section.status == "ok":
            out.append(section.markdown)
        else:
            out += [f"**{section.status.upper()}**: {section.reason}", ""]
    out += ["## Summary", "", *summary_lines(report.sections), ""]
    return "\n".join(out)


def summary_lines(sections: list[Section]) -> list[str]:
    """Return one Markdown list line or more per part: its status, time and main figures."""
    lines = []
    for section in sections:
        head = f"- {section.part}: {section.status} in {_duration(section.seconds)}"
        if section.status != "ok":
            lines.append(f"{head}: {section.reason}")
            continue
        lines.append(head)
        lines += [f"  - {line}" for line in section.summary]
    return lines


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser of this script."""
    parser = argparse.ArgumentParser(
        description="Run the fleetpulse benchmark suite on 127.0.0.1 and print a Markdown "
        "report with one section per part.",
    )
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S, metavar="S",
                        help="seconds of load per HTTP, Teltonika, MQTT and distributed row "
                        f"(default {DEFAULT_DURATION_S:g}; {SMOKE_DURATION_S:g} with --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="small sizes and about 2 s per row: checks that every part "
                        "works, not how fast the server is")
    parser.add_argument("--only", metavar="PARTS",
                        help=f"comma-separated parts to run, from {','.join(PART_NAMES)} "
                        f"(default: all but distributed)")
    parser.add_argument("--skip", metavar="PARTS", help="comma-separated parts to leave out")
    parser.add_argument("--distributed", action="store_true",
                        help="also run the distributed part (needs nats-server and PostgreSQL)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON to FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the suite from the command line; return 0, or 1 if a part failed."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        parts = select_parts(args.only, args.skip, args.distributed)
    except ValueError as exc:
        parser.error(str(exc))
    if not parts:
        parser.error("no part left to run; check --only and --skip")

    duration_s = SMOKE_DURATION_S if args.smoke else args.duration
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="fleetpulse-suite-") as folder:
        options = SuiteOptions(smoke=args.smoke, duration_s=duration_s, folder=Path(folder))
        estimate = sum(estimate_s(part, options) for part in parts)
        print(f"run_all: parts {', '.join(parts)}; estimated time {_duration(estimate)}",
              file=sys.stderr, flush=True)
        environment = environment_lines()
        started_s = time.monotonic()
        try:
            sections = run_parts(parts, options)
        except KeyboardInterrupt:
            print("run_all: interrupted; every server child and load process is stopped",
                  file=sys.stderr)
            return 130

    report = SuiteReport(
        started_at=started_at,
        command=" ".join(["benchmarks/run_all.py", *argv]),
        smoke=args.smoke,
        duration_s=duration_s,
        environment=environment,
        sections=sections,
    )
    markdown = render_markdown(report)
    print(markdown)
    print(f"run_all: finished in {_duration(time.monotonic() - started_s)} (estimate "
          f"{_duration(estimate)})", file=sys.stderr)
    print("\n".join(summary_lines(sections)), file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text(markdown)
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 1 if any(section.status == "failed" for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
