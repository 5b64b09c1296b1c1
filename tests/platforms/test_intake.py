"""Platform orders in: pushes stored raw before the answer, processed by fetching the order's
detail through the real client from a simulator, imported on the storefront's stock, moved along
the state machine by the platform's word; repeated, out-of-order and forged messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db.models import Sum

from apps.inventory.models import Stock
from apps.orders.models import Order, OrderLine, OrderStatus
from apps.platforms import processing
from apps.platforms.models import InboxMessage, PlatformOrder, PlatformShop
from apps.platforms.protocol import douyin
from apps.platforms.selectors import shop_push_url
from apps.platforms.simulator import DouyinSimulator, KuaishouSimulator, ShowSpec, SimSku, TaobaoSimulator

from ..factories import make_listing, make_session, make_sku
from ..orders.invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)

MSG_SECRET = "a3NfbXNnX3NlY3JldF8xNg=="


@pytest.fixture
def sku(merchant):  # type: ignore[no-untyped-def]
    return make_sku(merchant, on_hand=50, code="TEE-RED-M")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SIMULATORS = {"douyin": DouyinSimulator, "kuaishou": KuaishouSimulator, "taobao": TaobaoSimulator}


def connect(merchant, platform: str, base_url: str | None = None, shop_id: str = "7001"):  # type: ignore[no-untyped-def]
    """A connected shop and its simulator (started; stop it): the shop calls the simulator's API,
    the simulator pushes to the shop's push URL on ``base_url`` (a live server)."""
    port = _free_port()
    shop = PlatformShop.objects.create(
        merchant=merchant,
        platform=platform,
        shop_id=shop_id,
        name=platform,
        app_key=f"ak-{platform}",
        app_secret="sk-test",
        access_token="tok",
        msg_secret=MSG_SECRET if platform == "kuaishou" else "",
        api_base_url=f"http://127.0.0.1:{port}",
    )
    push = shop_push_url(shop)
    extra = {"msg_secret": MSG_SECRET} if platform == "kuaishou" else {}
    if push is not None and base_url is not None:
        extra["push_url"] = base_url + push
    sim = SIMULATORS[platform](
        app_key=f"ak-{platform}", app_secret="sk-test", access_token="tok", shop_id=shop_id, port=port, **extra
    )
    sim.start()
    return shop, sim


@pytest.fixture
def douyin_sim(merchant, live_server) -> Iterator[tuple[PlatformShop, DouyinSimulator]]:  # type: ignore[no-untyped-def]
    shop, sim = connect(merchant, "douyin", live_server.url)
    try:
        yield shop, sim
    finally:
        sim.stop()


def _drain() -> None:
    for _ in range(20):
        if not processing.process_pending():
            break


def test_a_douyin_show_lands_in_the_order_list_on_the_storefronts_stock(merchant, sku, douyin_sim):
    shop, sim = douyin_sim
    session = make_session(merchant)
    type(session).objects.filter(pk=session.pk).update(platforms=["storefront", "douyin"])
    listing = make_listing(merchant, quota=30, on_hand=50, sku=sku, session=session, limit=1)
    plan_sku = SimSku(sku.code, "1750000000001", "3600000000001", 990)
    run = sim.run_show(
        ShowSpec(skus=[plan_sku], orders=20, seed=3, pay_share=0.7, cancel_share=0.15, duplicate_share=0.2, max_lines=1)
    )
    sim.wait_show(run, timeout=60)
    assert InboxMessage.objects.filter(state=InboxMessage.State.PENDING).exists()  # stored, not processed yet
    _drain()
    assert not InboxMessage.objects.exclude(state__in=["processed", "ignored"]).exists(), list(
        InboxMessage.objects.exclude(state__in=["processed", "ignored"]).values("state", "error")
    )
    final = run.plan.final_status
    imported = {po.external_id: po for po in PlatformOrder.objects.select_related("order")}
    expected = {oid for oid, status in final.items()}
    # every order the platform sold is ours (one per platform order, however often it was pushed)
    assert {oid for oid, po in imported.items() if po.order_id} | {
        oid for oid, po in imported.items() if not po.order_id and po.status == "cancelled"
    } == expected
    mapping = {
        "pending_payment": OrderStatus.PENDING_PAYMENT,
        "paid": OrderStatus.PAID,
        "cancelled": OrderStatus.CANCELLED,
    }
    for oid, status in final.items():
        po = imported[oid]
        if po.order is None:
            continue
        assert po.order.channel == "douyin"
        want = mapping.get(status, status)
        if status == "cancelled" and po.order.paid_at is not None:
            want = OrderStatus.REFUNDED
        assert po.order.status == want, (oid, status, po.order.status)
    listing.refresh_from_db()
    live = (
        OrderLine.objects.filter(
            order__status__in=["pending_payment", "paid", "confirmed"], reserved=True, listing=listing
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    assert listing.sold == live
    assert Stock.objects.get(sku=sku).reserved == live
    assert_consistent(listing.pk)


def test_a_forged_push_is_refused_recorded_and_never_processed(merchant, sku, client, douyin_sim):
    shop, _sim = douyin_sim
    body = b'[{"tag":"101","msg_id":"1","data":"{\\"p_id\\":1,\\"shop_id\\":7001}"}]'
    url = shop_push_url(shop)
    r = client.post(url, body, content_type="application/json", HTTP_APP_ID="ak-douyin", HTTP_EVENT_SIGN="0" * 32)
    assert r.status_code == 401 and r.json()["code"] == 40041
    rejected = InboxMessage.objects.get()
    assert rejected.state == InboxMessage.State.REJECTED and rejected.body == body.decode()
    _drain()
    assert not PlatformOrder.objects.exists() and not Order.objects.exists()
    # correctly signed, the same body is stored and answered exactly as the platform requires
    sign = douyin.push_signature("ak-douyin", "sk-test", body)
    r = client.post(url, body, content_type="application/json", HTTP_APP_ID="ak-douyin", HTTP_EVENT_SIGN=sign)
    assert r.status_code == 200 and r.content == douyin.push_ack_body()
    assert InboxMessage.objects.filter(state=InboxMessage.State.PENDING).count() == 1
    # an unknown push URL: 404, recorded
    r = client.post(url[:-3] + "xyz", body, content_type="application/json")
    assert r.status_code == 404 and InboxMessage.objects.filter(shop=None, state="rejected").count() == 1
