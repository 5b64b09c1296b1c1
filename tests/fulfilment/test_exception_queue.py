"""The exception queue (异常订单) gets every kind, each opened by the flow that causes it and
resolved by the one that ends it, with its actions in admin, and its open counts on the
dashboards and the admin's home page.

- risk_hold: a flagged order (the real scorer, the merchant's review score at 0) paid through the
  payment notification endpoint is held by risk control; approve / reject in the queue go through
  risk control's review; the order leaving the hold resolves it.
- refund_owed: a payment after cancellation, a second payment (payment notifications);
  ``refunded`` or ``refund_owed_resolve`` resolve it.
- platform_conflict: Douyin (its simulator, over a real socket, through the shop's API client)
  cancels an order that shipped here, or one whose cancellation lost a race with risk control's
  hold; *cancel here* cancels what can still be cancelled.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from rest_framework.test import APIClient

from apps.fraud import rules as risk_rules
from apps.fraud import scoring
from apps.fraud.models import Decision, ReviewOutcome, RiskAssessment, RiskPolicy
from apps.fulfilment import exception_queue, services, shipping
from apps.fulfilment.models import ExceptionKind, FulfilmentException, ShipBatch, ShipBatchItem
from apps.merchants.services import staff_create
from apps.orders.models import Order, OrderStatus
from apps.orders.services import payments
from apps.orders.services.transitions import order_cancel, order_record_event, order_transition
from apps.platforms import processing
from apps.platforms.clients import client_for
from apps.platforms.models import PlatformOrder, ShopPlatform
from apps.platforms.services import shop_create
from apps.platforms.simulator import DouyinSimulator, ShowSpec, SimSku

from ..factories import make_listing, make_session, make_sku, make_token, order_body

pytestmark = pytest.mark.django_db
S = OrderStatus
K = ExceptionKind
QUEUE = reverse("admin:fulfilment_fulfilmentexception_changelist")
BATCHES = reverse("admin:fulfilment_shipbatch_changelist")


# --- helpers -----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _english() -> Any:
    """The words the tests read (details, resolutions, messages) in English; the product's default
    language is Chinese, and these strings are translated after the merge."""
    with translation.override("en"):
        yield


def staff(merchant: Any, name: str, role: str = "owner") -> tuple[Client, Any]:
    user = staff_create(merchant=merchant, username=name, password="", role=role)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client, user


def token_api(merchant: Any) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {make_token(merchant)}")
    return api


APP_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 aweme/30.1.0"


def place(api: APIClient, listing: Any, buyer: str, *, described: bool = False) -> Order:
    """An order placed through the API; ``described``: with the buyer's client (IP, device, user
    agent), as a streamer tool relays it (risk control's model scores only described orders)."""
    body = order_body(listing.pk, buyer=buyer)
    if described:
        body["client"] = {"ip": "39.170.8.20", "device_id": f"dev-{buyer}", "user_agent": APP_UA}
    r = api.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=buyer)
    assert r.status_code == 201, r.content
    return Order.objects.get(public_id=r.json()["id"])


def notify(order: Order, txn: str, amount: Decimal | None = None, status: int = 200) -> dict[str, Any]:
    """A signed payment notification to the endpoint, as the provider sends it."""
    raw = json.dumps(
        {
            "order": order.public_id,
            "transaction_id": txn,
            "amount": str(order.total if amount is None else amount),
            "paid_at": "2026-11-24T10:00:00+08:00",
        }
    ).encode()
    ts = int(time.time())
    r = APIClient().generic(
        "POST",
        "/api/v1/payments/notify",
        raw,
        content_type="application/json",
        HTTP_X_TIMESTAMP=str(ts),
        HTTP_X_SIGNATURE=payments.sign(raw, ts),
    )
    assert r.status_code == status, r.content
    return r.json()


def act(client: Client, action: str, exceptions: list[FulfilmentException]) -> list[str]:
    """Run a queue action on these rows as the page does; what it told the user."""
    data = {"action": action, "_selected_action": [e.pk for e in exceptions], "index": "0"}
    r = client.post(QUEUE, data, follow=True)
    assert r.redirect_chain and r.redirect_chain[0][1] == 302, r.content
    return [str(m) for m in get_messages(r.wsgi_request)]


def open_exception(order: Order, kind: str) -> FulfilmentException:
    return FulfilmentException.objects.get(order=order, kind=kind, resolved_at__isnull=True)


def offered(client: Client) -> set[str]:
    form = client.get(QUEUE).context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name} if form else set()


# --- risk_hold ------------------------------------------------------------------------------------------


@pytest.fixture
def held(merchant, monkeypatch, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """Three orders the real scorer flags (the merchant reviews every score) and risk control
    holds when their payment arrives through the payment notification endpoint."""
    RiskPolicy.objects.update_or_create(merchant=merchant, defaults={"review_score": 0.0})
    risk_rules.forget(merchant.pk)
    api = token_api(merchant)
    listing = make_listing(merchant, quota=10, limit=1, price="88.00")
    orders = [place(api, listing, f"fan-{i}", described=True) for i in range(3)]
    monkeypatch.setattr(scoring, "SETTLE_S", 0)
    scoring.score_pending()
    assert set(RiskAssessment.objects.values_list("decision", flat=True)) == {Decision.REVIEW}
    assert not FulfilmentException.objects.exists()  # flagged but unpaid: nothing held yet
    for i, order in enumerate(orders):
        with django_capture_on_commit_callbacks(execute=True):
            assert notify(order, f"t-{i}")["order_status"] == S.PAID  # the answer: paid; the hook holds it next
    return orders


def test_a_flagged_order_held_when_paid_opens_risk_hold_with_its_reasons(held) -> None:  # type: ignore[no-untyped-def]
    for order in held:
        order.refresh_from_db()
        assert order.status == S.ON_HOLD
        exc = open_exception(order, K.RISK_HOLD)
        assert exc.merchant_id == order.merchant_id
        assert re.fullmatch(r"risk score \d+\.\d: .+", exc.detail), exc.detail  # the score and its reasons
    assert FulfilmentException.objects.count() == 3  # one each, nothing else


def test_approve_and_reject_in_bulk_go_through_risk_review_and_resolve_the_holds(  # type: ignore[no-untyped-def]
    held, merchant, django_capture_on_commit_callbacks
) -> None:
    owner, user = staff(merchant, "boss")
    first, second, third = (open_exception(o, K.RISK_HOLD) for o in held)
    with django_capture_on_commit_callbacks(execute=True):
        said = act(owner, "approve_held", [first, second])
    assert said == ["2 held orders approved: they are confirmed."]
    with django_capture_on_commit_callbacks(execute=True):
        said = act(owner, "reject_held", [third])
    assert said == ["1 held order rejected: it is cancelled and owed a refund."]

    statuses = dict(Order.objects.filter(pk__in=[o.pk for o in held]).values_list("pk", "status"))
    assert [statuses[o.pk] for o in held] == [S.CONFIRMED, S.CONFIRMED, S.CANCELLED]
    outcomes = [RiskAssessment.objects.get(order=o).review_outcome for o in held]
    assert outcomes == [ReviewOutcome.APPROVED, ReviewOutcome.APPROVED, ReviewOutcome.REJECTED]
    assert RiskAssessment.objects.get(order=held[0]).reviewed_by == user
    assert Order.objects.get(pk=held[2].pk).refund_due == held[2].total
    for exc in (first, second, third):
        exc.refresh_from_db()
        assert exc.resolved_at is not None and exc.resolved_by == f"staff:{user.pk}", exc.resolution
    assert "Confirmed" in first.resolution and "Cancelled" in third.resolution

    # A row of another kind: left alone, and said so (a resolved one is out of the open queue).
    shipping.exception_open(order=held[0], kind=K.BAD_ADDRESS, detail="no district")
    other = open_exception(held[0], K.BAD_ADDRESS)
    said = act(owner, "approve_held", [first, other])
    assert said == ["1 selected row is not an open “Held by risk control” exception and was left alone."]
    assert RiskAssessment.objects.get(order=held[0]).review_outcome == ReviewOutcome.APPROVED


def test_an_order_leaving_the_hold_elsewhere_resolves_its_exception(held, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    """Decided in risk control's own review page: the queue follows the order."""
    from apps.fraud.review import review_decide

    order = held[0]
    assessment = RiskAssessment.objects.get(order=order)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(assessment_id=assessment.pk, merchant_id=order.merchant_id, approve=True)
    exc = FulfilmentException.objects.get(order=order, kind=K.RISK_HOLD)
    assert exc.resolved_at is not None and exc.resolved_by == "merchant"


def test_the_queue_actions_follow_the_roles(held, merchant) -> None:  # type: ignore[no-untyped-def]
    """Approve / reject need risk control's "change" (owner, operator: whoever runs the show);
    cancel here the orders' "cancel"; mark resolved the queue's "change"."""
    expected = {
        "owner": {"ship_again", "approve_held", "reject_held", "cancel_here", "mark_resolved"},
        "operator": {"ship_again", "approve_held", "reject_held", "cancel_here"},
        "customer_service": {"cancel_here"},
        "analyst": set(),
    }
    for role, actions in expected.items():
        client, _user = staff(merchant, f"u-{role}", role)
        assert offered(client) == actions, role
    cs, _user = staff(merchant, "cs-2", "customer_service")
    exc = open_exception(held[0], K.RISK_HOLD)
    cs.post(QUEUE, {"action": "approve_held", "_selected_action": [exc.pk], "index": "0"})  # forged
    assert Order.objects.get(pk=held[0].pk).status == S.ON_HOLD
    assert RiskAssessment.objects.get(order=held[0]).review_outcome == ReviewOutcome.NONE


def test_another_merchants_staff_cannot_review_these_holds(held, other_merchant) -> None:  # type: ignore[no-untyped-def]
    rival, _user = staff(other_merchant, "rival-boss")
    exc = open_exception(held[0], K.RISK_HOLD)
    rival.post(QUEUE, {"action": "approve_held", "_selected_action": [exc.pk], "index": "0"})
    rival.post(QUEUE, {"action": "cancel_here", "_selected_action": [exc.pk], "index": "0"})
    assert Order.objects.get(pk=held[0].pk).status == S.ON_HOLD
    assert open_exception(held[0], K.RISK_HOLD) == exc


# --- refund_owed -----------------------------------------------------------------------------------------


def test_a_payment_after_cancellation_opens_refund_owed_until_refunded(  # type: ignore[no-untyped-def]
    merchant, django_capture_on_commit_callbacks
) -> None:
    order = place(token_api(merchant), make_listing(merchant, quota=5, price="50.00"), "late-payer")
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order=order, actor="buyer", reason="changed my mind", by_buyer=True)
    assert not FulfilmentException.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(order, "late-1")["outcome"] == "late"
    exc = open_exception(order, K.REFUND_OWED)
    assert "late-1" in exc.detail and "50.00" in exc.detail
    with django_capture_on_commit_callbacks(execute=True):
        order_transition(order=order, to=S.REFUNDED, actor="refund", reason="refunded: late-1")
    exc.refresh_from_db()
    assert exc.resolved_at is not None and exc.resolved_by == "refund"


def test_a_second_payment_opens_refund_owed_once_and_the_refund_engine_resolves_it(  # type: ignore[no-untyped-def]
    merchant, django_capture_on_commit_callbacks
) -> None:
    order = place(token_api(merchant), make_listing(merchant, quota=5, price="50.00"), "double-payer")
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(order, "pay-1")["outcome"] == "applied"
    assert not FulfilmentException.objects.exists()  # a payment applied owes nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(order, "pay-2")["outcome"] == "duplicate_order"
        assert notify(order, "pay-2")["outcome"] == "duplicate_order"  # delivered twice: recorded once
    exc = open_exception(order, K.REFUND_OWED)
    assert "pay-2" in exc.detail
    assert FulfilmentException.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == S.PAID  # the order keeps the first payment

    assert exception_queue.refund_owed_resolve(order=order, actor="refund-engine") == 1
    exc.refresh_from_db()
    assert (exc.resolved_by, exc.resolution) == ("refund-engine", "refunded")
    # A later change that keeps the status (a review's approval) does not reopen it ...
    with django_capture_on_commit_callbacks(execute=True):
        order_record_event(order=order, actor="staff:1", reason="risk review: approved")
    assert not FulfilmentException.objects.filter(resolved_at__isnull=True).exists()
    # ... a third payment does.
    with django_capture_on_commit_callbacks(execute=True):
        notify(order, "pay-3", amount=Decimal("1.00"), status=422)  # a wrong amount: refused, recorded, owed back
    assert "pay-3" in open_exception(order, K.REFUND_OWED).detail


def test_the_receiver_costs_nothing_for_changes_it_does_not_track(merchant, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    """Placement calls it for every order: placed, paid, confirmed, shipped, and an unpaid
    storefront order expiring cost no query."""
    order = place(token_api(merchant), make_listing(merchant, quota=5), "cheap")
    with django_assert_num_queries(0):
        exception_queue.on_order_changed(order=order, created=True)
        for before, after in ((S.PENDING_PAYMENT, S.PAID), (S.PAID, S.CONFIRMED), (S.CONFIRMED, S.SHIPPED)):
            order.status = after
            exception_queue.on_order_changed(order=order, from_status=before)
        order.status = S.CANCELLED
        exception_queue.on_order_changed(order=order, from_status=S.PENDING_PAYMENT)


# --- platform_conflict ------------------------------------------------------------------------------------

SIM_SKU = SimSku("TEE-M", "1750000000001", "3600000000001", 990)


@pytest.fixture
def douyin(merchant):  # type: ignore[no-untyped-def]
    """A Douyin shop of the merchant connected to the Douyin simulator (a real socket), a show on
    air there, and two paid orders of the platform imported through processing."""
    sku = make_sku(merchant, on_hand=50, code=SIM_SKU.code)
    session = make_session(merchant)
    type(session).objects.filter(pk=session.pk).update(platforms=["storefront", "douyin"])
    make_listing(merchant, quota=20, sku=sku, session=session, limit=2)
    with DouyinSimulator(app_key="dy-app", app_secret="dy-secret", access_token="dy-token", shop_id="7001") as sim:
        shop = shop_create(
            merchant=merchant, platform="douyin", shop_id="7001", name="douyin", app_key="dy-app",
            app_secret="dy-secret", access_token="dy-token", api_base_url=sim.base_url,
        )  # fmt: skip
        plan = sim.seed_orders(
            ShowSpec(skus=[SIM_SKU], orders=2, seed=5, pay_share=1.0, cancel_share=0, duplicate_share=0, shuffle=0)
        )
        ids = sorted(plan.orders)
        for oid in ids:
            fetch_and_apply(shop, oid)
        yield sim, shop, [PlatformOrder.objects.get(external_id=oid) for oid in ids]


def fetch_and_apply(shop: Any, oid: str) -> PlatformOrder:
    with client_for(shop) as client:
        detail = client.order_detail(oid)
    return processing.apply_detail(shop, detail)


def cancel_on_platform(sim: DouyinSimulator, oid: str) -> None:
    """The buyer cancels on Douyin (an after-sale cancellation: the platform refunds them)."""
    with sim.lock:
        order = sim.orders[oid]
        order.updated_at = max(order.updated_at, time.time()) + 1  # after what the platform said last
        order.status, order.cancelled_at = "cancelled", order.updated_at


def test_a_platform_cancelling_an_order_shipped_here_opens_platform_conflict_once(douyin, merchant) -> None:  # type: ignore[no-untyped-def]
    sim, shop, (po, _other) = douyin
    order = po.order
    assert order.status == S.PAID
    order_transition(order=order, to=S.CONFIRMED, actor="system:auto-confirm")
    order_transition(order=order, to=S.SHIPPED, actor="batch", carrier="ZTO", tracking_number="ZT0001")
    cancel_on_platform(sim, po.external_id)

    fetch_and_apply(shop, po.external_id)
    order.refresh_from_db()
    assert order.status == S.SHIPPED  # no way back from shipped: a person decides
    exc = open_exception(order, K.PLATFORM_CONFLICT)
    assert str(ShopPlatform.DOUYIN.label) in exc.detail and "Cancelled" in exc.detail and "status 4" in exc.detail
    assert exc.detail.endswith("here the order is Shipped")

    fetch_and_apply(shop, po.external_id)  # the same state again (a repeated message): nothing new
    assert FulfilmentException.objects.filter(kind=K.PLATFORM_CONFLICT).count() == 1
    owner, user = staff(merchant, "boss")
    said = act(owner, "cancel_here", [exc])  # shipped: cannot be cancelled here
    assert said == [f"1 order could not be changed here and stays in the queue: {order.public_id} (Shipped)"]
    assert open_exception(order, K.PLATFORM_CONFLICT) == exc
    act(owner, "mark_resolved", [exc])
    fetch_and_apply(shop, po.external_id)  # resolved by hand stays resolved
    assert not FulfilmentException.objects.filter(resolved_at__isnull=True).exists()


def test_a_platform_cancel_that_loses_a_race_is_a_conflict_and_cancel_here_cancels_it(  # type: ignore[no-untyped-def]
    douyin, merchant, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """Douyin cancels a paid order while risk control holds it here: the cancellation's first step
    (paid -> refund_pending) is refused, the order stays held, and the queue shows both. *Cancel
    here* cancels it (a held order: ``cancelled``); both exceptions are resolved."""
    sim, shop, (shipped_po, po) = douyin
    order = po.order
    real = processing.order_transition

    def risk_holds_it_first(**kwargs: Any) -> Any:
        monkeypatch.setattr(processing, "order_transition", real)
        real(order=order, to=S.ON_HOLD, actor="risk", reason="held for risk review", allowed_from=(S.PAID,))
        return real(**kwargs)

    monkeypatch.setattr(processing, "order_transition", risk_holds_it_first)
    cancel_on_platform(sim, po.external_id)
    with django_capture_on_commit_callbacks(execute=True):
        fetch_and_apply(shop, po.external_id)
    order.refresh_from_db()
    assert order.status == S.ON_HOLD
    conflict = open_exception(order, K.PLATFORM_CONFLICT)
    assert conflict.detail.endswith("here the order is On hold (risk review)")
    assert open_exception(order, K.RISK_HOLD)
    assert "transition" in PlatformOrder.objects.get(pk=po.pk).exception_detail

    # the other order shipped and was cancelled on the platform too: one bulk action for both
    shipped = shipped_po.order
    order_transition(order=shipped, to=S.CONFIRMED, actor="system:auto-confirm")
    order_transition(order=shipped, to=S.SHIPPED, actor="batch", carrier="ZTO", tracking_number="ZT0002")
    cancel_on_platform(sim, shipped_po.external_id)
    fetch_and_apply(shop, shipped_po.external_id)
    owner, user = staff(merchant, "boss")
    with django_capture_on_commit_callbacks(execute=True):
        said = act(owner, "cancel_here", list(FulfilmentException.objects.filter(kind=K.PLATFORM_CONFLICT)))
    assert said == [
        "1 order cancelled here (a paid one is owed a refund).",
        f"1 order could not be changed here and stays in the queue: {shipped.public_id} (Shipped)",
    ]
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    for kind in (K.PLATFORM_CONFLICT, K.RISK_HOLD):
        exc = FulfilmentException.objects.get(order=order, kind=kind)
        assert exc.resolved_at is not None and exc.resolved_by == f"staff:{user.pk}", kind
    assert open_exception(shipped, K.PLATFORM_CONFLICT)


def test_a_platform_cancel_that_ours_follows_opens_nothing(douyin) -> None:  # type: ignore[no-untyped-def]
    sim, shop, (po, _other) = douyin
    cancel_on_platform(sim, po.external_id)
    fetch_and_apply(shop, po.external_id)
    assert Order.objects.get(pk=po.order_id).status == S.REFUNDED  # the platform refunded the buyer
    assert not FulfilmentException.objects.exists()


# --- the counts on the dashboards -----------------------------------------------------------------------


@pytest.fixture
def queues(merchant, other_merchant):  # type: ignore[no-untyped-def]
    """Merchant A: 2 risk holds, 1 bad address, 1 platform conflict open, 1 bad address resolved.
    Merchant B: 1 stock short open."""
    a_listing = make_listing(merchant, quota=10, limit=5)
    a_orders = [place(token_api(merchant), a_listing, f"a-{i}") for i in range(5)]
    for order, kind in zip(
        a_orders, [K.RISK_HOLD, K.RISK_HOLD, K.BAD_ADDRESS, K.PLATFORM_CONFLICT, K.BAD_ADDRESS], strict=True
    ):
        shipping.exception_open(order=order, kind=kind, detail="test")
    shipping.exception_resolve(
        exceptions=FulfilmentException.objects.filter(order=a_orders[4]), actor="test", resolution="fixed"
    )
    b_order = place(token_api(other_merchant), make_listing(other_merchant, quota=3), "b-0")
    shipping.exception_open(order=b_order, kind=K.STOCK_SHORT, detail="test")
    return a_listing.session, b_order


def counts_of(items: list[dict[str, Any]]) -> dict[str, int]:
    assert [i["kind"] for i in items] == list(K.values)  # every kind, in the queue's order
    return {i["kind"]: i["count"] for i in items if i["count"]}


A_COUNTS = {K.RISK_HOLD: 2, K.BAD_ADDRESS: 1, K.PLATFORM_CONFLICT: 1}


def test_the_counts_are_one_query_per_merchant_scope(  # type: ignore[no-untyped-def]
    queues, merchant, other_merchant, django_assert_num_queries
) -> None:
    with django_assert_num_queries(1):
        items = exception_queue.exception_counts(merchant_ids=[merchant.pk])
    assert counts_of(items) == A_COUNTS
    assert counts_of(exception_queue.exception_counts(merchant_ids=[other_merchant.pk])) == {K.STOCK_SHORT: 1}
    assert counts_of(exception_queue.exception_counts(merchant_ids=None)) == {**A_COUNTS, K.STOCK_SHORT: 1}
    assert counts_of(exception_queue.exception_counts(merchant_ids=[], merchant_id=merchant.pk)) == {}
    url = items[list(K.values).index(K.RISK_HOLD)]["url"]
    assert url == f"{QUEUE}?kind__exact=risk_hold"


def test_the_dashboards_show_each_merchant_its_own_counts_linked_to_the_queue(queues, merchant, other_merchant) -> None:  # type: ignore[no-untyped-def]
    session, _b_order = queues
    a_staff, _user = staff(merchant, "a-staff", "customer_service")
    b_staff, _user = staff(other_merchant, "b-staff")

    r = a_staff.get(reverse("dashboard"))
    assert r.status_code == 200 and counts_of(r.context["exceptions"]) == A_COUNTS
    html = r.content.decode()
    assert f'href="{QUEUE}?kind__exact=risk_hold"' in html and 'data-exception-kind="risk_hold"><strong>2<' in html
    r = a_staff.get(reverse("dashboard-session", args=[session.pk]))
    assert r.status_code == 200 and counts_of(r.context["exceptions"]) == A_COUNTS
    link = f"{QUEUE}?kind__exact=bad_address&amp;merchant={merchant.pk}"
    assert link in r.content.decode()

    r = b_staff.get(reverse("dashboard"))
    assert counts_of(r.context["exceptions"]) == {K.STOCK_SHORT: 1}
    assert b_staff.get(reverse("dashboard-session", args=[session.pk])).status_code == 404

    # the admin's home page
    r = a_staff.get(reverse("admin:index"))
    assert r.status_code == 200 and counts_of(r.context["exceptions"]) == A_COUNTS
    assert 'data-exception-kind="platform_conflict"' in r.content.decode()
    assert counts_of(b_staff.get(reverse("admin:index")).context["exceptions"]) == {K.STOCK_SHORT: 1}
    root = Client(HTTP_ACCEPT_LANGUAGE="en")
    root.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    assert counts_of(root.get(reverse("admin:index")).context["exceptions"]) == {**A_COUNTS, K.STOCK_SHORT: 1}

    # each link opens the queue on exactly what it counted
    for client, items in ((a_staff, A_COUNTS), (b_staff, {K.STOCK_SHORT: 1})):
        for kind, n in items.items():
            r = client.get(QUEUE, {"kind__exact": kind})
            assert r.status_code == 200 and r.context["cl"].result_count == n, kind
    r = root.get(QUEUE, {"kind__exact": "bad_address", "merchant": merchant.pk})
    assert r.context["cl"].result_count == 1
    assert root.get(QUEUE, {"merchant": "not-a-number"}).context["cl"].result_count == 0
    r = b_staff.get(QUEUE, {"kind__exact": "risk_hold", "merchant": merchant.pk})  # A's id: still walled
    assert r.status_code == 200 and r.context["cl"].result_count == 0


# --- the batch list ----------------------------------------------------------------------------------------


def test_the_batch_list_reads_its_counts_in_constant_queries(merchant) -> None:  # type: ignore[no-untyped-def]
    account = services.carrier_account_create(
        merchant=merchant, carrier="kuaidi100", app_id="c1", app_key="k", app_secret="s", express="ZTO",
        sender={"name": "仓", "mobile": "13800000001", "province": "浙江省", "city": "杭州市", "district": "余杭区",
                "detail": "文一西路1号"},
        api_base_url="http://127.0.0.1:9", is_default=True,
    )  # fmt: skip
    api = token_api(merchant)
    listing = make_listing(merchant, quota=40, limit=40)
    orders = [place(api, listing, f"batch-{i}") for i in range(24)]
    results = [ShipBatchItem.Result.SHIPPED, ShipBatchItem.Result.FAILED, ShipBatchItem.Result.PENDING]
    owner, _user = staff(merchant, "boss")

    def add_batch(n: int) -> ShipBatch:
        batch = ShipBatch.objects.create(merchant=merchant, account_id=account.pk, total=3, status="running")
        for order, result in zip(orders[n * 3 : n * 3 + 3], results, strict=True):
            ShipBatchItem.objects.create(batch=batch, order=order, result=result)
        return batch

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            r = owner.get(BATCHES)
        assert r.status_code == 200
        bar = '<progress class="lc-progress" max="100" value="66">'
        assert r.content.decode().count(bar) == ShipBatch.objects.count()
        return len(ctx.captured_queries)

    first = add_batch(0)
    one = queries()
    for n in range(1, 8):
        add_batch(n)
    assert queries() == one  # 8 batches: the same queries as 1
    state = owner.get(reverse("admin:fulfilment_shipbatch_progress", args=[first.pk])).json()
    assert (state["done"], state["shipped"], state["failed"], state["percent"]) == (2, 1, 1, 66)
