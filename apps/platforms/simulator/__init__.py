"""Local stand-ins for the Douyin, Kuaishou and Taobao open platforms (issue 12): each verifies
our signatures, serves order details, records our stock and shipment calls, can be told to time
out or fail, and generates a live show's order traffic (pushes to a push URL, or the TMC queue).

Start one in-process on a free port::

    with DouyinSimulator(app_key=..., app_secret=..., access_token=..., shop_id="1234567",
                         push_url="http://127.0.0.1:8000/...") as sim:
        run = sim.run_show(ShowSpec(skus=[SimSku("TEE-M", "1750000000001", "3600000000001", 9900)]))
        sim.wait_show(run)

or from the command line: ``python manage.py platform_simulator douyin --port 9001 ...``.
"""

from __future__ import annotations

from typing import Any

from .core import PlatformSimulator
from .douyin import DouyinSimulator
from .kuaishou import KuaishouSimulator
from .taobao import TaobaoSimulator
from .traffic import ShowSpec, SimSku

SIMULATORS: dict[str, type[PlatformSimulator]] = {
    "douyin": DouyinSimulator,
    "kuaishou": KuaishouSimulator,
    "taobao": TaobaoSimulator,
}


def make_simulator(platform: str, **kwargs: Any) -> PlatformSimulator:
    """A (not yet started) simulator for ``platform``; ``kwargs`` as its class takes them."""
    return SIMULATORS[platform](**kwargs)


__all__ = [
    "SIMULATORS",
    "DouyinSimulator",
    "KuaishouSimulator",
    "PlatformSimulator",
    "ShowSpec",
    "SimSku",
    "TaobaoSimulator",
    "make_simulator",
]
