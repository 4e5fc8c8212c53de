"""The listener interface every device protocol implements, and the protocol registry."""

from __future__ import annotations

import abc
import importlib
import logging
import pkgutil
from typing import ClassVar

from fleetpulse.config import Settings
from fleetpulse.ingest.service import IngestService

log = logging.getLogger(__name__)


class ProtocolListener(abc.ABC):
    """A server or subscriber that receives one device protocol.

    ``name`` is also the settings section that enables it (``[teltonika] enabled =
    true``). The listener acknowledges a device only after ``IngestService`` has made
    the records durable.
    """

    name: ClassVar[str]

    def __init__(self, settings: Settings, ingest: IngestService) -> None:
        self.settings = settings
        self.ingest = ingest

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin listening (or subscribing). Raises OSError if the port cannot be bound."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting, close connections and wait for in-flight records. Idempotent."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Return a one-line description with the bound address, for the start-up banner."""


PROTOCOLS: dict[str, type[ProtocolListener]] = {}


def register(listener: type[ProtocolListener]) -> type[ProtocolListener]:
    """Class decorator that makes a protocol listener available by its name."""
    PROTOCOLS[listener.name] = listener
    return listener


def discover() -> dict[str, type[ProtocolListener]]:
    """Import every protocol sub-package so its listener registers itself."""
    import fleetpulse.ingest.protocols as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.ispkg:
            importlib.import_module(f"{package.__name__}.{module.name}")
    return PROTOCOLS


def enabled_listeners(settings: Settings, ingest: IngestService) -> list[ProtocolListener]:
    """Build the listeners whose settings section has ``enabled = true``."""
    listeners = []
    for name, listener_type in sorted(discover().items()):
        section = getattr(settings, name, None)
        if section is not None and getattr(section, "enabled", False):
            listeners.append(listener_type(settings, ingest))
    return listeners
