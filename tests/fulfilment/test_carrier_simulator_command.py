"""``manage.py carrier_simulator`` serves a carrier simulator until terminated, with the demo
account's credentials unless told others: a real client gets a waybill from it."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from django.conf import settings

from apps.fulfilment.carriers.base import Credentials, Party, WaybillRequest
from apps.fulfilment.clients.kdniao import KdniaoClient
from apps.fulfilment.clients.kuaidi100 import Kuaidi100Client
from apps.fulfilment.simulator import DEMO_ACCOUNTS

from ..servers import free_port, stop, wait_for_http

PARTY = Party(
    name="王五", mobile="13700001234", province="浙江省", city="杭州市", district="西湖区", detail="文三路 9 号"
)


def client_for(carrier: str, base_url: str) -> Kuaidi100Client | KdniaoClient:
    demo = DEMO_ACCOUNTS[carrier]
    if carrier == "kuaidi100":
        creds = Credentials(carrier="kuaidi100", app_id=demo["customer"], app_key=demo["key"],
                            app_secret=demo["secret"], push_salt=demo["salt"])  # fmt: skip
        return Kuaidi100Client(creds, base_url=base_url)
    return KdniaoClient(Credentials(carrier="kdniao", app_id=demo["ebusiness_id"], app_key=demo["app_key"]),
                        base_url=base_url)  # fmt: skip


@pytest.mark.parametrize("carrier", ["kuaidi100", "kdniao"])
def test_carrier_simulator_command_serves_until_terminated(carrier: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "carrier_simulator", carrier, "--port", str(port)],
        cwd=settings.BASE_DIR, start_new_session=True, stdout=subprocess.PIPE,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/_sim/health", proc, timeout=30)
        health = httpx.get(f"{base_url}/_sim/health", timeout=5).json()
        assert health["service"] == carrier and health["ok"] is True
        with client_for(carrier, base_url) as client:
            req = WaybillRequest(order_code="CMD-1", express="ZTO", sender=PARTY, receiver=PARTY, items=(("茶饼", 1),))
            waybill = client.create_waybill(req)
        assert waybill.waybill_no and waybill.order_code == "CMD-1" and waybill.carrier == carrier
        calls = httpx.get(f"{base_url}/_sim/calls", params={"kind": "waybill"}, timeout=5).json()
        assert [c["accepted"] for c in calls] == [True]
    finally:
        stop(proc)
    assert proc.returncode is not None
