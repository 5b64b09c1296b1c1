"""Shipment sync out against the three simulators over real sockets: a platform order that ships
has its waybill pushed with the platform's carrier code; a platform that fails or times out is
retried by the sweep until it accepts, nothing lost; the sweep finds shipments whose signal was
lost; a carrier with no code fails visibly until the table knows it; an order the platform itself
shipped is not pushed; storefront orders are left alone; the admin list is read-only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.merchants.services import staff_create
from apps.orders.services.transitions import order_transition
from apps.platforms.models import PlatformOrder
from apps.platforms.ship_sync import ShipState, carrier_key, company_code, ship_sweep
from apps.platforms.simulator import ShowSpec, SimSku

from ..factories import make_listing
from .sync_support import Platforms, place, running_platforms

pytestmark = pytest.mark.django_db(transaction=True)
SKU = SimSku("TEE-M", "1750000000001", "3600000000001", 9900)


@pytest.fixture
def platforms(merchant: Any, settings: Any) -> Iterator[Platforms]:
    settings.PLATFORM_API_TIMEOUT = 0.5
    with running_platforms(merchant, settings) as running:
        yield running


def platform_order(p: Platforms, platform: str, listing: Any, n: int = 0) -> PlatformOrder:
    """A paid order on the platform (in its simulator) imported as ours, paid and confirmed."""
    plan = p.sims[platform].seed_orders(
        ShowSpec(skus=[SKU], orders=3, seed=n, pay_share=1.0, cancel_share=0, duplicate_share=0, shuffle=0)
    )
    external_id = sorted(oid for oid, o in plan.orders.items() if o.status == "paid")[0]
    order = place(listing, f"{platform}-{n}", channel=platform)
    po = PlatformOrder.objects.create(
        shop=p.shops[platform], platform=platform, external_id=external_id, order=order, status="paid"
    )
    for to in ("paid", "confirmed"):
        order_transition(order=order, to=to, actor="platform")
    return po


def ship(po: PlatformOrder, carrier: str = "顺丰", tracking: str = "SF1234567890") -> None:
    assert po.order is not None
    order_transition(order=po.order, to="shipped", actor="merchant", carrier=carrier, tracking_number=tracking)


def waybill(p: Platforms, po: PlatformOrder) -> tuple[str, str] | None:
    return p.sims[po.platform].orders[po.external_id].waybill


def test_a_shipped_platform_order_pushes_its_waybill_with_the_platforms_code(
    platforms: Platforms, merchant: Any
) -> None:
    listing = make_listing(merchant, quota=10)
    expected = {"douyin": "shunfeng", "kuaishou": "4", "taobao": "SF"}
    for platform in ("douyin", "kuaishou", "taobao"):
        po = platform_order(platforms, platform, listing)
        ship(po)
        po.refresh_from_db()
        assert (po.ship_state, po.ship_attempts, po.ship_error) == (ShipState.PUSHED, 1, ""), platform
        assert po.ship_pushed_at is not None
        assert waybill(platforms, po) == (expected[platform], "SF1234567890")
        assert platforms.sims[platform].orders[po.external_id].status == "shipped"
    assert ship_sweep() == {"found": 0}  # nothing left, nothing pushed twice
    assert all(len(sim.calls("ship")) == 1 for sim in platforms.sims.values())


def test_failing_and_timing_out_platforms_are_retried_until_accepted(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10)
    platforms.sims["douyin"].set_fault("error", 2.0)
    platforms.sims["kuaishou"].set_fault("timeout", 2.0, hang=5)  # no answer within our 0.5 s
    platforms.sims["taobao"].set_fault("timeout", 2.0, hang=0.1)  # 504
    pos = [platform_order(platforms, name, listing) for name in ("douyin", "kuaishou", "taobao")]
    for po in pos:
        ship(po, carrier="ZTO", tracking=f"ZT{po.pk:08d}")
    for po in pos:
        po.refresh_from_db()
        assert (po.ship_state, po.ship_attempts) == (ShipState.FAILED, 1) and po.ship_error, po.platform
        assert waybill(platforms, po) is None
    # Within the wait after a failure the sweep leaves them alone ...
    assert ship_sweep() == {"found": 0}
    # ... once it passed (and the platforms recovered) it pushes every one.
    for sim in platforms.sims.values():
        sim.clear_fault()
    PlatformOrder.objects.update(updated_at=timezone.now() - timedelta(minutes=1))
    assert ship_sweep() == {"found": 0, ShipState.PUSHED: 3}
    codes = {"douyin": "zhongtong", "kuaishou": "8", "taobao": "ZTO"}
    for po in pos:
        po.refresh_from_db()
        assert (po.ship_state, po.ship_attempts, po.ship_error) == (ShipState.PUSHED, 2, "")
        assert waybill(platforms, po) == (codes[po.platform], f"ZT{po.pk:08d}")


def test_the_sweep_finds_a_shipment_whose_signal_was_lost(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10)
    po = platform_order(platforms, "taobao", listing)
    PlatformOrder.objects.filter(pk=po.pk).update(order=None)  # the receiver finds no platform order
    ship(PlatformOrder(order=po.order))
    PlatformOrder.objects.filter(pk=po.pk).update(order=po.order)
    po.refresh_from_db()
    assert po.ship_state == ""
    assert ship_sweep() == {"found": 1, ShipState.PUSHED: 1}
    assert waybill(platforms, po) == ("SF", "SF1234567890")


def test_a_carrier_without_a_code_fails_until_the_table_knows_it(
    platforms: Platforms, merchant: Any, settings: Any
) -> None:
    listing = make_listing(merchant, quota=10)
    po = platform_order(platforms, "kuaishou", listing)
    ship(po, carrier="德邦快递", tracking="DPK1")
    po.refresh_from_db()
    assert po.ship_state == ShipState.FAILED and po.ship_error.startswith("unknown_carrier")
    assert not platforms.sims["kuaishou"].calls("ship")
    settings.PLATFORM_CARRIER_CODES = {"kuaishou": {"德邦快递": "22"}}
    PlatformOrder.objects.update(updated_at=timezone.now() - timedelta(minutes=1))
    assert ship_sweep()[ShipState.PUSHED] == 1
    assert waybill(platforms, po) == ("22", "DPK1")


def test_an_order_the_platform_shipped_itself_is_not_pushed(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10)
    po = platform_order(platforms, "douyin", listing)
    PlatformOrder.objects.filter(pk=po.pk).update(status="shipped")  # the intake saw the platform's ship event
    ship(po)
    po.refresh_from_db()
    assert po.ship_state == ShipState.SKIPPED
    assert not platforms.sims["douyin"].calls("ship")


def test_storefront_orders_are_left_alone(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10)
    order = place(listing, "web")
    for to in ("paid", "confirmed"):
        order_transition(order=order, to=to, actor="buyer")
    order_transition(order=order, to="shipped", actor="merchant", carrier="SF", tracking_number="SF1")
    assert ship_sweep() == {"found": 0}
    assert not any(sim.calls("ship") for sim in platforms.sims.values())


def test_carrier_codes_per_platform() -> None:
    assert [carrier_key(c) for c in ("顺丰", "sf-express", " zto ", "韵达快递", "京东")] == [
        "SF", "SF", "ZTO", "YUNDA", "JD"
    ]  # fmt: skip
    assert company_code("douyin", "圆通") == "yuantong"
    assert company_code("taobao", "STO") == "STO"
    assert company_code("kuaishou", "EMS") == "3"
    assert company_code("taobao", "POST") == "POST"  # not in the table: the platform's own code
    assert company_code("kuaishou", "17") == "17"
    with pytest.raises(ValueError, match="express code"):
        company_code("kuaishou", "Deppon")
    with pytest.raises(ValueError, match="no carrier"):
        company_code("douyin", "  ")


def test_the_admin_lists_shipment_syncs_read_only(platforms: Platforms, merchant: Any) -> None:
    listing = make_listing(merchant, quota=10)
    po = platform_order(platforms, "douyin", listing)
    ship(po)
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(staff_create(merchant=merchant, username="owner", password="pw-long-enough-1", role="owner"))
    page = client.get("/admin/platforms/platformorder/?ship_state__exact=pushed")
    assert page.status_code == 200
    html = page.content.decode()
    assert "发货回传" in html and po.external_id in html and "pushed" in html
    assert client.post(f"/admin/platforms/platformorder/{po.pk}/change/", {}).status_code == 403
