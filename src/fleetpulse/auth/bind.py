"""The start-up check of listen addresses against ``[auth]``, for every server role."""

from __future__ import annotations

import ipaddress
import logging

from fleetpulse.auth.keyfile import key_file_path
from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposed_listeners(settings: Settings) -> list[str]:
    """Return ``section host`` for each enabled listener whose address is not loopback.

    The MQTT entry is the broker's address: records from a broker on another host come
    from any client that can publish to it.
    """
    exposed = []
    if not is_loopback(settings.server.host):
        exposed.append(f"[server] host {settings.server.host}")
    for name in ("teltonika", "osmand", "mqtt"):
        section = getattr(settings, name)
        if section.enabled and not is_loopback(section.host):
            exposed.append(f"[{name}] host {section.host}")
    return exposed


def describe_auth(settings: Settings) -> str:
    """Describe for the start-up banner whether clients need keys, without any secret."""
    if settings.auth.enabled:
        return f"on, keys in {key_file_path(settings)}"
    if exposed_listeners(settings):
        return "off ([server] allow_unauthenticated = true: something in front must authenticate)"
    return "off (loopback only; see docs/security.md before listening elsewhere)"


def check_bind(settings: Settings) -> None:
    """Raise ConfigError when a process would serve beyond loopback without authentication.

    With ``[auth] enabled`` it also rejects ``[teltonika] allow_unknown_imeis``, which
    would let any device send records. ``[server] allow_unauthenticated = true`` lets
    a deployment behind its own authenticating proxy or network start without keys; it
    is logged as a warning.
    """
    if settings.auth.enabled:
        if settings.teltonika.enabled and settings.teltonika.allow_unknown_imeis:
            raise ConfigError(
                "[teltonika] allow_unknown_imeis = true lets any device send records, which "
                "[auth] enabled forbids; list the devices in [teltonika] allowed_imeis"
            )
        return
    exposed = exposed_listeners(settings)
    if not exposed:
        return
    where = ", ".join(exposed)
    if settings.server.allow_unauthenticated:
        log.warning(
            "serving without authentication on %s: anyone who reaches these addresses can "
            "send and read telemetry ([server] allow_unauthenticated = true)",
            where,
        )
        return
    raise ConfigError(
        f"cannot start: {where} is not loopback and [auth] enabled is false, so anyone "
        "who reaches it could send and read telemetry. Set [auth] enabled = true and create "
        "keys with `fleetpulse keys create` (see docs/security.md), bind to 127.0.0.1, or "
        "set [server] allow_unauthenticated = true if a proxy or network in front "
        "authenticates every client"
    )
