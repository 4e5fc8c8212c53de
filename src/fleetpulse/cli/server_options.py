"""Options shared by the commands that start a server: config file, data folder, address."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any

from fleetpulse.config import Settings, load_settings


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
    """
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
