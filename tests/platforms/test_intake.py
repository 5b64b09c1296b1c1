"""Platform orders in: pushes stored raw before the answer, processed by fetching the order's
detail through the real client from a simulator, imported on the storefront's stock, moved along
the state machine by the platform's word; repeated, out-of-order and forged messages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.test import Client

from apps.inventory.models import Stock
from apps.inventory.services import stock_adjust
from apps.merchants.services import staff_create
from apps.orders.errors import InvalidTransition
from apps.orders.models import Order, OrderLine, OrderStatus
from apps.orders.services.transitions import order_transition
from apps.platforms import intake, processing
from apps.platforms.clients import client_for
from apps.platforms.models import InboxMessage, PlatformOrder, PlatformShop, PlatformSkuMapping
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


def _drain(shops: tuple[PlatformShop, ...] = ()) -> None:
    """Pull the pulled shops until their queues are empty, and process the inbox until nothing is due."""
    for _ in range(50):
        pulled = sum(intake.pull_shop(shop) for shop in shops if shop.platform == "taobao")
        if not processing.process_pending() and not pulled:
            break


def on_air(merchant, sku, platforms: list[str], quota: int = 30):  # type: ignore[no-untyped-def]
    session = make_session(merchant)
    type(session).objects.filter(pk=session.pk).update(platforms=["storefront", *platforms])
    return make_listing(merchant, quota=quota, on_hand=sku.stock.on_hand, sku=sku, session=session, limit=1)


EXPECTED = {
    "pending_payment": OrderStatus.PENDING_PAYMENT,
    "paid": OrderStatus.PAID,
    "cancelled": OrderStatus.CANCELLED,
}


@pytest.mark.parametrize("platform", ["douyin", "kuaishou", "taobao"])
def test_a_platforms_show_lands_in_the_order_list_on_the_storefronts_stock(merchant, sku, live_server, platform):
    """Creates, pays, cancels, duplicates and out-of-order messages: each platform order is one
    order of ours in the platform's final state, on the listing's quota, however often and in
    whatever order its messages came."""
    listing = on_air(merchant, sku, [platform], quota=50)  # more than 20 orders of at most 2 can take
    shop, sim = connect(merchant, platform, live_server.url)
    try:
        plan_sku = SimSku(sku.code, "1750000000001", "3600000000001", 990)
        spec = ShowSpec(
            skus=[plan_sku],
            orders=20,
            seed=3,
            pay_share=0.7,
            cancel_share=0.15,
            duplicate_share=0.3,
            shuffle=0.5,
            max_lines=1,
        )
        run = sim.run_show(spec)
        sim.wait_show(run, timeout=60)
        plan = run.plan.summary()
        assert plan["duplicates"] > 0  # and out of order: a pay before its create
        assert plan["out_of_order"] > 0 or platform == "taobao"  # (a TMC queue keeps the order)
        if platform != "taobao":
            # stored before answered; nothing processed yet (the tests process explicitly)
            assert InboxMessage.objects.filter(state=InboxMessage.State.PENDING).exists()
        _drain((shop,))
    finally:
        sim.stop()
    assert not InboxMessage.objects.exclude(state__in=["processed", "ignored"]).exists(), list(
        InboxMessage.objects.exclude(state__in=["processed", "ignored"]).values("state", "error")
    )
    # one stored message per platform message id, however often it was delivered
    ids = Counter(InboxMessage.objects.exclude(message_id="").values_list("message_id", flat=True))
    assert ids and max(ids.values()) == 1
    final = run.plan.final_status
    imported = {po.external_id: po for po in PlatformOrder.objects.select_related("order")}
    assert set(imported) == set(final)
    for oid, status in final.items():
        po = imported[oid]
        if po.order is None:  # cancelled before we first saw it: nothing was ever reserved
            assert status == "cancelled" and po.status == "cancelled"
            continue
        assert po.order.channel == platform and po.exception == ""
        want = EXPECTED.get(status, status)
        if status == "cancelled" and po.order.paid_at is not None:
            want = OrderStatus.REFUNDED  # paid, then cancelled on the platform: it refunded the buyer
        assert po.order.status == want, (oid, status, po.order.status)
        detail_total = sum(Decimal(line.line_total) for line in po.order.lines.all())
        assert po.order.total >= detail_total  # goods, plus the platform's freight
    assert Order.objects.filter(channel=platform).count() == sum(1 for po in imported.values() if po.order_id)
    listing.refresh_from_db()
    live = (
        OrderLine.objects.filter(
            order__status__in=["pending_payment", "paid", "confirmed"], reserved=True, listing=listing
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    assert listing.sold == live > 0
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
    # an unknown push URL: 404, nothing stored (anyone can post there)
    before = InboxMessage.objects.count()
    r = client.post(url[:-3] + "xyz", body, content_type="application/json")
    assert r.status_code == 404 and InboxMessage.objects.count() == before


def _seed(sim, sku, *, orders: int, seed: int, code: str | None = None):  # type: ignore[no-untyped-def]
    spec = ShowSpec(
        skus=[SimSku(code or sku.code, "1750000000009", "3600000000009", 990)],
        orders=orders,
        seed=seed,
        pay_share=1.0,
        cancel_share=0.0,
        duplicate_share=0.0,
        max_lines=1,
    )
    return sim.seed_orders(spec)


def _apply_all(shop, order_ids) -> None:  # type: ignore[no-untyped-def]
    with client_for(shop) as client:
        for oid in order_ids:
            processing.apply_detail(shop, client.order_detail(oid))


def test_an_oversold_platform_order_is_accepted_flagged_and_holds_nothing_it_does_not_have(merchant, sku):
    """The platform sold more than the listing's quota: every order is ours, the ones stock could
    not cover are flagged oversold with their short units, the listing and the stock stay exact
    (no unit sold twice), and a short order cannot ship until a person covers it."""
    listing = on_air(merchant, sku, ["kuaishou"], quota=5)
    shop, sim = connect(merchant, "kuaishou")
    try:
        plan = _seed(sim, sku, orders=8, seed=5)
        _apply_all(shop, list(plan.orders))
    finally:
        sim.stop()
    pos = list(PlatformOrder.objects.select_related("order"))
    assert len(pos) == 8 and all(po.order_id for po in pos)
    oversold = [po for po in pos if po.exception == PlatformOrder.Problem.OVERSOLD]
    assert oversold and all(po.oversold_units > 0 for po in oversold)
    listing.refresh_from_db()
    reserved_units = OrderLine.objects.filter(reserved=True, listing=listing).aggregate(n=Sum("quantity"))["n"]
    short_units = OrderLine.objects.filter(reserved=False).aggregate(n=Sum("quantity"))["n"]
    assert listing.sold == reserved_units <= 5 and short_units == sum(po.oversold_units for po in oversold)
    assert Stock.objects.get(sku=sku).reserved == reserved_units
    assert all(po.order.status == OrderStatus.PAID for po in pos)  # the platform's word: paid
    assert_consistent(listing.pk)
    # the order page says where it came from and what is short
    staff = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    staff.force_login(staff_create(merchant=merchant, username="op", password="pw-long-enough-1", role="operator"))
    page = staff.get(f"/admin/orders/order/{oversold[0].order_id}/change/")
    html = page.content.decode()
    assert page.status_code == 200 and "销售平台" in html and oversold[0].external_id in html
    assert "未被库存覆盖" in html and 'data-exception="oversold"' in html
    queue = staff.get("/admin/platforms/platformorder/?exception__exact=oversold").content.decode()
    assert all(po.external_id in queue for po in oversold)
    short_order = oversold[0].order
    order_transition(public_id=short_order.public_id, to=OrderStatus.CONFIRMED, actor="staff:1")
    with pytest.raises(InvalidTransition):
        order_transition(public_id=short_order.public_id, to=OrderStatus.SHIPPED, actor="staff:1")
    # a cancel gives back exactly what it held: nothing for the short line
    before = Stock.objects.get(sku=sku).reserved
    order_transition(public_id=short_order.public_id, to=OrderStatus.REFUND_PENDING, actor="kuaishou")
    assert Stock.objects.get(sku=sku).reserved == before - sum(
        line.quantity for line in short_order.lines.all() if line.reserved
    )
    assert_consistent(listing.pk)


def test_an_unmapped_line_waits_in_the_exception_queue_and_imports_once_mapped(merchant, sku):
    shop, sim = connect(merchant, "taobao")
    try:
        plan = _seed(sim, sku, orders=2, seed=9, code="NO-SUCH-CODE")
        _apply_all(shop, list(plan.orders))
        pos = list(PlatformOrder.objects.all())
        assert len(pos) == 2 and all(po.order_id is None for po in pos)
        assert {po.exception for po in pos} == {PlatformOrder.Problem.UNMAPPED}
        assert pos[0].exception_detail["unmapped"][0]["code"] == "NO-SUCH-CODE"
        assert not Order.objects.exists()
        PlatformSkuMapping.objects.create(shop=shop, platform_sku_id="1750000000009", sku=sku)
        for po in pos:
            processing.platform_order_retry(po)
    finally:
        sim.stop()
    pos = list(PlatformOrder.objects.select_related("order"))
    assert all(po.order_id and po.exception == "" and po.resolved_at for po in pos)
    assert {po.order.status for po in pos} == {OrderStatus.PAID}
    assert Stock.objects.get(sku=sku).reserved == sum(line.quantity for po in pos for line in po.order.lines.all())


def test_an_oversold_order_is_covered_once_stock_arrives_and_can_then_ship(merchant):
    sku = make_sku(merchant, on_hand=1, code="TEE-RED-M")  # the listing's one unit is all there is
    on_air(merchant, sku, ["douyin"], quota=1)
    shop, sim = connect(merchant, "douyin")
    try:
        plan = _seed(sim, sku, orders=3, seed=21)
        _apply_all(shop, list(plan.orders))
        short = [po for po in PlatformOrder.objects.select_related("order") if po.exception == "oversold"]
        assert short
        po = short[0]
        assert processing.platform_order_retry(po).exception == "oversold"  # no stock yet: still short
        stock_adjust(sku=sku, delta=20, reason="receipt")
        po = processing.platform_order_retry(po)
    finally:
        sim.stop()
    assert po.exception == "" and po.resolved_at is not None and po.oversold_units == 0
    assert not po.order.lines.filter(reserved=False).exists()
    assert po.order.events.filter(reason__contains="covered by stock").exists()
    order_transition(public_id=po.order.public_id, to=OrderStatus.CONFIRMED, actor="staff:1")
    shipped = order_transition(
        public_id=po.order.public_id, to=OrderStatus.SHIPPED, actor="staff:1", carrier="SF", tracking_number="SF1"
    )
    assert shipped.status == OrderStatus.SHIPPED
    stock = Stock.objects.get(sku=sku)
    assert (
        stock.reserved
        == OrderLine.objects.filter(
            reserved=True, order__status__in=["pending_payment", "paid", "confirmed"]
        ).aggregate(n=Sum("quantity"))["n"]
    )
