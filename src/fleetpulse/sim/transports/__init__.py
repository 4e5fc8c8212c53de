"""Simulator transports, one module per protocol, found by name.

A module ``sim/transports/<protocol>.py`` exposes ``TRANSPORT``, a class built from the
``SimulationOptions`` (see ``base.Transport``). It may also expose
``adapt_options(options) -> options`` to change what the fleet generates, for example
device ids that the protocol can carry. Dropping a module here adds a protocol to
``fleetpulse simulate --protocol``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.transports.base import Transport

# Modules of this package that are not transports.
_NOT_TRANSPORTS = frozenset({"base"})


def transport_names() -> list[str]:
    """Return the protocol names that have a transport module, sorted."""
    return sorted(
        module.name
        for module in pkgutil.iter_modules(__path__)
        if not module.ispkg and module.name not in _NOT_TRANSPORTS
    )


def _module(protocol: str) -> Any:
    if protocol not in transport_names():
        raise ValueError(
            f"unknown protocol {protocol!r}; expected one of: {', '.join(transport_names())}"
        )
    return importlib.import_module(f"{__name__}.{protocol}")


def adapt_options(options: SimulationOptions) -> SimulationOptions:
    """Return the options as the protocol's transport needs them (unchanged for most)."""
    adapt = getattr(_module(options.protocol), "adapt_options", None)
    return options if adapt is None else adapt(options)


def open_transport(options: SimulationOptions) -> Transport:
    """Build the transport of ``options.protocol``. Raises ValueError for an unknown one."""
    transport: Transport = _module(options.protocol).TRANSPORT(options)
    return transport
