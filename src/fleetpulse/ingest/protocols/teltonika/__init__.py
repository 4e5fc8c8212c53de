"""Teltonika devices over TCP: Codec 8, Codec 8 Extended and Codec 16 AVL packets.

Modules: ``framing`` cuts the byte stream, ``decoding`` reads packets, ``mapping`` turns
AVL records into records per device model, ``answers`` builds the replies, ``session``
serves one connection and ``listener`` the TCP server. ``encoding`` builds packets, for
the simulator and the tests.
"""

from fleetpulse.ingest.protocols.teltonika.listener import TeltonikaListener

__all__ = ["TeltonikaListener"]
