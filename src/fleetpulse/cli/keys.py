"""``fleetpulse keys``: create, list and revoke API keys and device tokens in the key file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fleetpulse.auth.keyfile import create_key, key_file_path, read_keys, revoke_key
from fleetpulse.auth.tokens import SCOPE_DEVICE, Scope
from fleetpulse.config import load_settings
from fleetpulse.errors import FleetpulseError

DESCRIPTION = """\
Manage the key file of [auth] (default: keys.json in the data folder). Servers reload it
within about a second of a change, so new and revoked keys apply without a restart.

  fleetpulse keys create --scope read --name dashboard    an operator key for reading
  fleetpulse keys create --scope admin --name ops         read plus notify rules, dead letters
  fleetpulse keys create --device truck-7                 a device token for truck-7's records
  fleetpulse keys create --device gw-1 --device gw-2      a gateway token for several devices
  fleetpulse keys list
  fleetpulse keys revoke 3f9a0c1b2d4e

The token is printed once and only its SHA-256 is stored; keep it in a secret store.
"""


def add_parser(subparsers: Any) -> None:
    """Register the ``keys`` sub-command and its actions."""
    parser = subparsers.add_parser(
        "keys",
        help="create, list and revoke API keys and device tokens",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    create = actions.add_parser(
        "create", help="create a key and print its token once", description="Create a key."
    )
    kind = create.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--scope",
        choices=["read", "admin"],
        help="operator key: read (query API, live stream, dashboard) or admin (read plus "
        "notify rules, dead letters and sending records for any device)",
    )
    kind.add_argument(
        "--device",
        action="append",
        metavar="ID",
        help="device token for the records of device ID; repeat for a gateway that sends "
        "for several devices",
    )
    create.add_argument("--name", default="", help="a label shown by `keys list`")
    _add_file_options(create)
    create.set_defaults(func=main, run=_create)

    listing = actions.add_parser(
        "list", help="list the keys without their tokens", description="List the keys."
    )
    _add_file_options(listing)
    listing.set_defaults(func=main, run=_list)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a key by its id",
        description="Revoke a key; running servers reject it within about a second.",
    )
    revoke.add_argument("key_id", metavar="KEY_ID", help="the id shown by `keys list`")
    _add_file_options(revoke)
    revoke.set_defaults(func=main, run=_revoke)

    parser.set_defaults(func=main, run=None, keys_parser=parser)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file naming [auth] key_file"
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data folder whose keys.json to use ([server] data_dir)"
    )
    parser.add_argument(
        "--key-file", metavar="FILE", help="the key file itself, overriding [auth] key_file"
    )


def _key_file(args: argparse.Namespace) -> Path:
    if args.key_file:
        return Path(args.key_file)
    overrides = {"server": {"data_dir": args.data_dir}} if args.data_dir else {}
    return key_file_path(load_settings(args.config, overrides=overrides))


def _create(args: argparse.Namespace) -> int:
    scope: Scope = SCOPE_DEVICE if args.device else args.scope
    devices = frozenset(args.device or [])
    path = _key_file(args)
    credential, token = create_key(path, scope, devices, args.name)
    print(f"created key {credential.key_id} scope={credential.scope} in {path}", file=sys.stderr)
    if devices:
        print(f"devices: {', '.join(sorted(devices))}", file=sys.stderr)
    print("the token below is shown only now; store it in a secret store", file=sys.stderr)
    print(token)
    return 0


def _list(args: argparse.Namespace) -> int:
    path = _key_file(args)
    credentials = read_keys(path)
    if not credentials:
        print(f"no keys in {path}; create one with `fleetpulse keys create`", file=sys.stderr)
        return 0
    print(f"{'KEY_ID':<12}  {'SCOPE':<6}  {'STATUS':<8}  {'CREATED':<20}  NAME / DEVICES")
    for item in credentials:
        status = "revoked" if item.revoked else "active"
        devices = f" [{', '.join(sorted(item.devices))}]" if item.devices else ""
        print(
            f"{item.key_id:<12}  {item.scope:<6}  {status:<8}  {item.created_at:<20}  "
            f"{item.name}{devices}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    path = _key_file(args)
    try:
        credential = revoke_key(path, args.key_id)
    except KeyError:
        print(
            f"fleetpulse keys revoke: no key with id {args.key_id!r} in {path}; "
            "`fleetpulse keys list` shows the ids",
            file=sys.stderr,
        )
        return 1
    print(f"revoked key {credential.key_id} at {credential.revoked_at}", file=sys.stderr)
    return 0


def main(args: argparse.Namespace) -> int:
    """Run one ``keys`` action; configuration and key file errors exit with status 2."""
    if args.run is None:
        args.keys_parser.print_help()
        return 2
    try:
        code: int = args.run(args)
    except (FleetpulseError, ValueError) as exc:
        print(f"fleetpulse keys: {exc}", file=sys.stderr)
        return 2
    return code
