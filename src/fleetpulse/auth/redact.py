"""A logging filter that removes tokens and credentials from every log record.

fleetpulse's own log lines name keys by their public key id only, but other libraries log
what they receive. uvicorn logs the path and query string of each WebSocket handshake at
info level. At debug level the websockets library logs every handshake header,
``Authorization`` and ``Sec-WebSocket-Protocol`` included. ``RedactingFilter`` rewrites
such records before any handler writes them:

- a fleetpulse token ``fp_<key id>_<secret>`` becomes ``fp_<key id>_REDACTED``, so the
  line still names the key;
- the value after ``Bearer`` (a header) or ``bearer.`` (the live subprotocol) becomes
  ``REDACTED``;
- the value of a query parameter named like a credential (``?token=``, ``&password=``...)
  becomes ``REDACTED``;
- in uvicorn's lines, a query string after a path is replaced by ``?REDACTED`` as a whole.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Final

from fleetpulse.auth.tokens import KEY_ID_BYTES, TOKEN_PREFIX

REDACTED: Final = "REDACTED"
# Names of query and form parameters whose values are credentials. OsmAnd drops these
# parameters before it builds a record, so none of them is ever stored as an attribute.
SECRET_PARAMETERS: Final = frozenset(
    {
        "token",
        "access_token",
        "auth",
        "authorization",
        "apikey",
        "api_key",
        "key",
        "password",
        "passwd",
        "pass",
        "pwd",
        "secret",
    }
)
# Loggers of uvicorn and of the websockets library, which uvicorn hands "uvicorn.error".
UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_TOKEN: Final = re.compile(rf"\b({TOKEN_PREFIX}_[0-9a-f]{{{2 * KEY_ID_BYTES}}}_)[A-Za-z0-9_\-]+")
_BEARER: Final = re.compile(r"(?i)\b(bearer(?:\s+|\.))[^\s,;'\"]+")
_SECRET_PARAMETER: Final = re.compile(
    r"(?i)([?&;](?:"
    + "|".join(sorted((re.escape(name) for name in SECRET_PARAMETERS), key=len, reverse=True))
    + r"))=[^&\s'\"]*"
)
# A request target with a query string, as uvicorn passes it in the arguments of its lines.
_PATH_QUERY: Final = re.compile(r"^(/[^?\s]*)\?\S*")
_FORMATTER: Final = logging.Formatter()


def redact_text(text: str) -> str:
    """Return ``text`` with tokens, Bearer values and credential parameters replaced."""
    text = _TOKEN.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    return _SECRET_PARAMETER.sub(rf"\g<1>={REDACTED}", text)


def is_secret_parameter(name: str) -> bool:
    """Return whether a decoded parameter name, in any case, names a credential."""
    return name.strip().lower() in SECRET_PARAMETERS


class RedactingFilter(logging.Filter):
    """Rewrites the message, traceback and stack of each record with ``redact_text``.

    Always returns True: it changes records and never drops one.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        changed = False
        if record.name.startswith("uvicorn") and isinstance(record.args, tuple):
            args = tuple(_strip_query(arg) for arg in record.args)
            changed = args != record.args
            record.args = args
        message = record.getMessage()
        clean = redact_text(message)
        if changed or clean != message:
            record.msg = clean
            record.args = None
        if record.exc_info and record.exc_text is None:
            # Formatter.format reuses exc_text, so the traceback is written redacted.
            record.exc_text = redact_text(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_on_handlers(handlers: Iterable[logging.Handler]) -> None:
    """Add one ``RedactingFilter`` to each handler that has none yet."""
    for handler in handlers:
        if not any(isinstance(item, RedactingFilter) for item in handler.filters):
            handler.addFilter(RedactingFilter())


def install_on_loggers(names: Iterable[str] = UVICORN_LOGGERS) -> None:
    """Add one ``RedactingFilter`` to each named logger that has none yet.

    A logger's filter runs only for records logged on that logger, before they reach any
    handler, including handlers that fleetpulse did not configure (a test's capture, an
    embedding application's).
    """
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(item, RedactingFilter) for item in logger.filters):
            logger.addFilter(RedactingFilter())


def _strip_query(arg: object) -> object:
    if isinstance(arg, str):
        return _PATH_QUERY.sub(rf"\g<1>?{REDACTED}", arg)
    return arg
