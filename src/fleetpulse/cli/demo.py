"""``fleetpulse demo``: placeholder until the simulator lands."""
from typing import Any
def add_parser(subparsers: Any) -> None:
    pass
