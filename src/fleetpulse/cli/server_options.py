"""Options shared by the commands that start a server: config file, data folder, address."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any

from fleetpulse.config import Settings, load_settings

log = logging.getLogger(__name__)

# Allocations minus deallocations that start a collection of the youngest generation.
# Python's default is 700: a server that builds a few objects per record and drops them
# again ran a young collection every few requests.
GC_YOUNG_THRESHOLD = 20_000


def add_server_options(parser: argparse.ArgumentParser, default_port: int | None = None) -> None:
    """Add --config, --data-dir, --host, --port and --log-level to a sub-command."""
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (see docs/configuration.md)"
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder for the queue and store files (default: [server] data_dir, ./fleetpulse-data)",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=port_number,
        default=default_port,
        help="TCP port to listen on; 0 picks a free one "
        f"(default {default_port if default_port is not None else '[server] port, 8080'})",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (default info)",
    )


def port_number(text: str) -> int:
    """Parse a TCP port for argparse: a whole number from 0 to 65535."""
    if not text.isascii() or not text.isdigit() or int(text) > 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port; use 0 to 65535")
    return int(text)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load settings from --config and FLEETPULSE_* variables, then apply the flags."""
    server: dict[str, Any] = {}
    for flag in ("data_dir", "host", "port", "log_level"):
        value = getattr(args, flag, None)
        if value is not None:
            server[flag] = value
    return load_settings(args.config, overrides={"server": server})


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a server coroutine on uvloop when it is installed, else on asyncio's own loop.

    uvloop comes with uvicorn[standard]; it halves the event loop's share of the CPU.
    The garbage collector is tuned first (``tune_garbage_collector``).
    """
    tune_garbage_collector()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def tune_garbage_collector() -> None:
    """Collect less often, and never scan the objects that exist after imports.

    Every request and every record allocates short-lived objects, and each young
    collection walks every tracked object younger than the last one. ``gc.freeze``
    moves the modules, classes and settings loaded so far into a generation that
    collections skip. Reference counting still frees almost everything at once; the
    collector only finds cycles, so running it less often costs little memory.
    """
    _, middle, old = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    log.debug("garbage collector tuned: young_threshold=%d frozen=%d",
              GC_YOUNG_THRESHOLD, gc.get_freeze_count())
