"""Local stand-ins for the carriers (issue 13), on ``apps.core.simserver``: each verifies our
signatures, allocates waybill numbers (idempotent per our parcel code), answers tracking queries,
can be told to time out or fail, and sends signed tracking pushes, retried until acknowledged.

In process, on a free port::

    with Kuaidi100Simulator(customer="C1", key="K1", secret="S1", salt="SALT") as sim:
        client = Kuaidi100Client(Credentials(carrier="kuaidi100", app_id="C1", app_key="K1",
                                             app_secret="S1", push_salt="SALT"), base_url=sim.base_url)

or from the command line: ``python manage.py carrier_simulator kuaidi100|kdniao --port N``.
"""

from __future__ import annotations

from typing import Any

from apps.core.simserver import SimServer

from .kdniao import KdniaoSimulator
from .kuaidi100 import Kuaidi100Simulator

SIMULATORS: dict[str, type[SimServer]] = {"kuaidi100": Kuaidi100Simulator, "kdniao": KdniaoSimulator}

# The accounts a simulator started without credentials knows (what a demo carrier account uses).
DEMO_ACCOUNTS: dict[str, dict[str, str]] = {
    "kuaidi100": {
        "customer": "LCDEMOCUSTOMER",
        "key": "lc-demo-key",
        "secret": "lc-demo-secret",
        "salt": "lc-demo-salt",
    },
    "kdniao": {"ebusiness_id": "1700001", "app_key": "lc-demo-appkey"},
}


def make_simulator(carrier: str, **kwargs: Any) -> SimServer:
    """A (not yet started) simulator for ``carrier``: the demo account's credentials, overridden
    by ``kwargs`` as the class takes them."""
    return SIMULATORS[carrier](**{**DEMO_ACCOUNTS[carrier], **kwargs})


__all__ = ["DEMO_ACCOUNTS", "SIMULATORS", "KdniaoSimulator", "Kuaidi100Simulator", "make_simulator"]
