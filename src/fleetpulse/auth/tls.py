"""TLS settings of the listeners: a certificate chain and key in PEM files."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from fleetpulse.errors import ConfigError

log = logging.getLogger(__name__)


def tls_files(section: str, cert_file: str, key_file: str) -> tuple[str, str] | None:
    """Return (certificate, key) paths, or None when both settings are empty.

    Raises ConfigError when only one is set or a file is missing, naming the setting.
    """
    if not cert_file and not key_file:
        return None
    if not cert_file or not key_file:
        missing = "tls_cert_file" if not cert_file else "tls_key_file"
        raise ConfigError(
            f"[{section}] {missing} is empty; set both tls_cert_file and tls_key_file, or "
            "neither for plain TCP"
        )
    for name, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file)):
        if not Path(path).is_file():
            raise ConfigError(f"[{section}] {name} {path} is not a file; check the path")
    return cert_file, key_file


def server_ssl_context(section: str, cert_file: str, key_file: str) -> ssl.SSLContext | None:
    """Build a server TLS context (TLS 1.2 or newer), or None when TLS is off.

    Raises ConfigError when the files cannot be loaded as a certificate and its key.
    """
    files = tls_files(section, cert_file, key_file)
    if files is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(*files)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"[{section}] cannot load tls_cert_file {files[0]} with tls_key_file "
            f"{files[1]}: {exc}; check that both are PEM and that the key matches"
        ) from exc
    log.info("tls enabled section=%s cert_file=%s", section, files[0])
    return context
