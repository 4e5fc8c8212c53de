"""The key file: a JSON list of key hashes, written by ``fleetpulse keys`` and read by servers.

The file is written whole to a temporary file with mode 0600 and renamed over the old
one, under an exclusive ``flock`` on ``<key file>.lock``, so that concurrent
``fleetpulse keys`` runs do not lose each other's changes. Servers never write it.

``KeyStore`` serves lookups from memory and reads the file again when its modification
time, size or inode changed, checked at most once per ``RELOAD_CHECK_S``. So several
processes sharing one file agree on a new or revoked key within about a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from fleetpulse.auth.tokens import (
    OPERATOR_SCOPES,
    SCOPE_DEVICE,
    Credential,
    Scope,
    key_id_of,
    new_token,
    token_matches,
    token_sha256,
)
from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError
from fleetpulse.model.record import DEVICE_ID_MAX_LENGTH, DeviceId

log = logging.getLogger(__name__)

KEY_FILE_NAME: Final = "keys.json"
FORMAT_VERSION: Final = 1
# How often a lookup checks whether the file changed: the delay before a revocation
# made by `fleetpulse keys revoke` applies in a running server.
RELOAD_CHECK_S: Final = 1.0


class KeyFileError(ConfigError):
    """The key file is unreadable, invalid or readable by other users."""


def key_file_path(settings: Settings) -> Path:
    """Return ``[auth] key_file``, or ``keys.json`` in ``[server] data_dir`` when it is empty."""
    configured = settings.auth.key_file
    if configured:
        return Path(configured)
    return Path(settings.server.data_dir) / KEY_FILE_NAME


def read_keys(path: Path) -> list[Credential]:
    """Read every key of the file, revoked ones included; a missing file has none.

    Raises KeyFileError when the file is readable by group or others, or invalid.
    """
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            raw = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} has mode {stat.S_IMODE(mode):04o}, so other users can read "
            f"the key hashes; run `chmod 600 {path}`"
        )
    try:
        document = json.loads(raw)
        return [_credential(entry) for entry in document["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(
            f"key file {path} is invalid ({exc!r}); restore it from a backup or move it "
            "away and create new keys with `fleetpulse keys create`"
        ) from exc


def write_keys(path: Path, credentials: list[Credential]) -> None:
    """Replace the file with ``credentials``: temporary file with mode 0600, fsync, rename."""
    document = {"version": FORMAT_VERSION, "keys": [_entry(item) for item in credentials]}
    data = json.dumps(document, indent=2).encode("utf-8") + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` for a read, change and write of the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def create_key(
    path: Path, scope: Scope, devices: frozenset[str] = frozenset(), name: str = ""
) -> tuple[Credential, str]:
    """Add a new key to the file and return it with its token, which is stored nowhere."""
    if scope == SCOPE_DEVICE and not devices:
        raise ValueError("a device token needs at least one device id")
    if scope in OPERATOR_SCOPES and devices:
        raise ValueError(f"a {scope} key is not bound to devices; leave out the device ids")
    for device_id in sorted(devices):
        check_device_id(device_id)
    with locked(path):
        credentials = read_keys(path)
        key_id, token = new_token()
        credential = Credential(
            key_id=key_id,
            scope=scope,
            token_sha256=token_sha256(token),
            name=name,
            devices=devices,
            created_at=_now_iso(),
        )
        write_keys(path, [*credentials, credential])
    log.info("key created key_id=%s scope=%s devices=%d", key_id, scope, len(devices))
    return credential, token


def check_device_id(device_id: str) -> None:
    """Raise ValueError unless ingest would accept ``device_id`` in a record."""
    try:
        msgspec.convert(device_id, DeviceId)
    except msgspec.ValidationError:
        raise ValueError(
            f"device id {device_id!r} ({len(device_id)} characters) is invalid: ingest "
            f"accepts 1 to {DEVICE_ID_MAX_LENGTH} characters, not only spaces, without "
            "control or invisible format characters; use the id that the device sends"
        ) from None


def revoke_key(path: Path, key_id: str) -> Credential:
    """Mark a key revoked; it stays in the file for the record. Raises KeyError if unknown."""
    with locked(path):
        credentials = read_keys(path)
        index = next((i for i, item in enumerate(credentials) if item.key_id == key_id), None)
        if index is None:
            raise KeyError(key_id)
        credential = credentials[index]
        if credential.revoked_at is None:
            credential = Credential(
                key_id=credential.key_id,
                scope=credential.scope,
                token_sha256=credential.token_sha256,
                name=credential.name,
                devices=credential.devices,
                created_at=credential.created_at,
                revoked_at=_now_iso(),
            )
            credentials[index] = credential
            write_keys(path, credentials)
    log.info("key revoked key_id=%s", key_id)
    return credential


class KeyStore:
    """The active keys of one key file, reloaded when the file changes.

    A file that becomes invalid after a good load is logged and the keys of the last good
    load stay in use, so a half-edited file does not lock every client out.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_id: dict[str, Credential] = {}
        self._devices: frozenset[str] = frozenset()
        self._signature: tuple[int, int, int] | None = None
        self._checked_at = -RELOAD_CHECK_S

    def load(self) -> None:
        """Read the file now. Raises KeyFileError, for a check at start-up."""
        signature = self._stat()
        credentials = read_keys(self.path)
        self._apply(credentials, signature)

    def authenticate(self, token: str) -> Credential | None:
        """Return the active key whose token this is, or None."""
        self._reload_if_changed()
        key_id = key_id_of(token)
        if key_id is None:
            return None
        credential = self._by_id.get(key_id)
        if credential is None or not token_matches(token, credential):
            return None
        return credential

    def device_known(self, device_id: str) -> bool:
        """Return whether an active device token lists ``device_id``."""
        self._reload_if_changed()
        return device_id in self._devices

    @property
    def active_count(self) -> int:
        return len(self._by_id)

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_S:
            return
        self._checked_at = now
        signature = self._stat()
        if signature == self._signature:
            return
        try:
            credentials = read_keys(self.path)
        except KeyFileError as exc:
            log.error(
                "key file reload failed, keeping the %d keys loaded before: %s",
                len(self._by_id),
                exc,
            )
            self._signature = signature
            return
        self._apply(credentials, signature)
        log.info("key file reloaded path=%s active_keys=%d", self.path, len(self._by_id))

    def _apply(self, credentials: list[Credential], signature: tuple[int, int, int] | None) -> None:
        active = [item for item in credentials if not item.revoked]
        self._by_id = {item.key_id: item for item in active}
        self._devices = frozenset(
            device for item in active if item.scope == SCOPE_DEVICE for device in item.devices
        )
        self._signature = signature

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino


def _credential(entry: dict[str, Any]) -> Credential:
    scope = entry["scope"]
    if scope not in (*OPERATOR_SCOPES, SCOPE_DEVICE):
        raise ValueError(f"key {entry.get('id')!r} has unknown scope {scope!r}")
    return Credential(
        key_id=str(entry["id"]),
        scope=scope,
        token_sha256=str(entry["sha256"]),
        name=str(entry.get("name", "")),
        devices=frozenset(str(device) for device in entry.get("devices", [])),
        created_at=str(entry.get("created_at", "")),
        revoked_at=entry.get("revoked_at"),
    )


def _entry(credential: Credential) -> dict[str, Any]:
    return {
        "id": credential.key_id,
        "name": credential.name,
        "scope": credential.scope,
        "devices": sorted(credential.devices),
        "sha256": credential.token_sha256,
        "created_at": credential.created_at,
        "revoked_at": credential.revoked_at,
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
