"""Batch shipping, tracking and the automation, against the carrier simulators over real sockets:
a show's paid orders go to ``delivered`` and ``completed`` with one batch action; every step is
idempotent; a carrier that times out or refuses fails what it must and nothing ships twice."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import events as core_events
from apps.fraud import scoring
from apps.fulfilment import automation, shipping
from apps.fulfilment.models import (
    CarrierAccount,
    CarrierPush,
    FulfilmentException,
    Parcel,
    ParcelOrder,
    ShipBatch,
    ShipBatchItem,
    TrackingEvent,
)
from apps.fulfilment.simulator import DEMO_ACCOUNTS, Kuaidi100Simulator
from apps.fulfilment.tracking import tracking_apply
from apps.orders.models import Order, OrderEvent, OrderStatus
from apps.orders.services.ledger import ledger_verify
from apps.orders.services.transitions import order_transition

from ..factories import make_listing, make_session, make_token, order_body
from ..waiting import wait_until

S = OrderStatus
DEMO = DEMO_ACCOUNTS["kuaidi100"]
SENDER = {
    "name": "杭州仓",
    "mobile": "13800000001",
    "province": "浙江省",
    "city": "杭州市",
    "district": "余杭区",
    "detail": "文一西路1号",
}


def address(name: str, phone: str, detail: str) -> dict[str, str]:
    return {
        "name": name,
        "phone": phone,
        "province": "浙江省",
        "city": "杭州市",
        "district": "西湖区",
        "detail": detail,
    }


@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    with Kuaidi100Simulator(**DEMO) as running:
        yield running


def make_account(merchant: Any, sim: Kuaidi100Simulator) -> CarrierAccount:
    from apps.fulfilment import services

    created = services.carrier_account_create(
        merchant=merchant,
        carrier="kuaidi100",
        app_id=DEMO["customer"],
        app_key=DEMO["key"],
        app_secret=DEMO["secret"],
        push_salt=DEMO["salt"],
        express="ZTO",
        sender=SENDER,
        api_base_url=sim.base_url,
        is_default=True,
    )
    return CarrierAccount.objects.get(pk=created.pk)


def place(api: APIClient, listing_id: int, buyer: str, addr: dict[str, str], quantity: int = 1) -> str:
    body = order_body(listing_id, buyer=buyer, quantity=quantity)
    body["shipping_address"] = addr
    body["buyer"]["phone"] = addr["phone"]
    r = api.post("/api/v1/orders", body, format="json")
    assert r.status_code == 201, r.content
    return str(r.json()["id"])


def ship(account: CarrierAccount, ids: list[str]) -> ShipBatch:
    """A batch of these orders, created as the API does; its run (queued on commit: synchronous
    tasks in tests) happens before this returns."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        batch = shipping.batch_create(merchant_id=account.merchant_id, actor="test", orders=ids)
    batch.refresh_from_db()
    return batch


def pay(public_id: str) -> None:
    order_transition(public_id=public_id, to=S.PAID, actor="payment", reason="paid: test")


def confirm(public_id: str) -> None:
    order_transition(public_id=public_id, to=S.CONFIRMED, actor="test", reason="confirmed: test")


class Pushes:
    """What went to the buyers' status pages (``order.<id>`` groups)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, group: str, payload: dict[str, Any]) -> None:
        self.sent.append((group, payload))

    def statuses(self, public_id: str) -> list[str]:
        return [
            p["order"]["status"] for g, p in self.sent if g == f"order.{public_id}" and p.get("type") == "order.updated"
        ]

    def traces(self, public_id: str) -> list[dict[str, Any]]:
        return [p for g, p in self.sent if g == f"order.{public_id}" and p.get("type") == "order.trace"]


@pytest.fixture
def pushes(monkeypatch: pytest.MonkeyPatch) -> Pushes:
    recorder = Pushes()
    monkeypatch.setattr(core_events, "publish", recorder)
    return recorder


@pytest.mark.django_db(transaction=True)
def test_a_shows_paid_orders_reach_completed_with_one_batch_action(  # type: ignore[no-untyped-def]
    merchant, live_server, settings, sim, pushes, monkeypatch
) -> None:
    """End to end: placed and paid -> auto-confirmed after the cooling window (risk control cleared
    them) -> one batch action (waybills, merge, labels, picking list, shipped) -> the carrier's
    signed pushes over HTTP (delivered) -> auto-complete days later. Every step in the ledger and
    pushed to the buyer's page; the only manual step is the batch."""
    settings.PUBLIC_BASE_URL = live_server.url
    make_account(merchant, sim)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    session = make_session(merchant)
    listing = make_listing(merchant, quota=10, limit=2, session=session)
    a = address("王小明", "13900001111", "文三路100号3幢1202室")
    ids = [
        place(api, listing.pk, "fan-a", a),
        place(api, listing.pk, "fan-a", {**a, "detail": "文三路100号3栋1202"}),  # the same flat, written otherwise
        place(api, listing.pk, "fan-b", address("李华", "13900002222", "教工路18号2单元501")),
    ]
    for public_id in ids:
        pay(public_id)
    monkeypatch.setattr(scoring, "SETTLE_S", 0)
    scoring.score_pending()

    assert automation.auto_confirm() == 0  # within the cooling window: buyers may still cancel
    later = timezone.now() + timedelta(minutes=31)
    assert automation.auto_confirm(now=later) == 3
    assert set(Order.objects.filter(public_id__in=ids).values_list("status", flat=True)) == {S.CONFIRMED}

    r = api.post("/api/v1/shipments/batches", {"session": session.pk, "status": "confirmed"}, format="json")
    assert r.status_code == 202, r.content
    batch_id = r.json()["id"]
    r = api.get(f"/api/v1/shipments/batches/{batch_id}")  # the task ran (synchronous tasks in tests)
    body = r.json()
    assert (body["status"], body["shipped"], body["failed"], body["progress"]) == ("done", 3, 0, 1.0)
    assert {i["result"] for i in body["items"]} == {"shipped"}
    parcels = list(Parcel.objects.filter(merchant=merchant))
    assert len(parcels) == 2  # fan-a's two orders to one flat merged
    merged = ParcelOrder.objects.get(order__public_id=ids[0]).parcel
    assert ParcelOrder.objects.get(order__public_id=ids[1]).parcel == merged
    assert all(p.waybill_no and p.routing_code and p.subscribed for p in parcels)
    for public_id in ids:
        order = Order.objects.get(public_id=public_id)
        parcel = ParcelOrder.objects.get(order=order).parcel
        assert (order.status, order.tracking_number) == (S.SHIPPED, parcel.waybill_no)
    for name in ("labels", "picking_xlsx", "picking_csv"):
        assert body["downloads"][name]
    pdf = api.get(f"/api/v1/shipments/batches/{batch_id}/labels")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")

    for parcel in parcels:  # the carrier collects, carries and delivers: signed pushes to our URL
        sim.run_tracking(parcel.waybill_no, ("1", "0", "5", "3"))
    sim.wait_pushes(30)
    wait_until(
        lambda: set(Order.objects.filter(public_id__in=ids).values_list("status", flat=True)) == {S.DELIVERED},
        what="every order delivered by the pushes",
    )
    assert CarrierPush.objects.filter(outcome=CarrierPush.Outcome.APPLIED).count() == 8
    assert TrackingEvent.objects.filter(parcel=merged).count() == 4
    assert all(p.delivered_at for p in Parcel.objects.filter(merchant=merchant))

    assert automation.auto_complete() == 0  # the buyer has days to complain
    assert automation.auto_complete(now=timezone.now() + timedelta(days=8)) == 3

    for public_id in ids:
        history = list(
            OrderEvent.objects.filter(order__public_id=public_id).order_by("seq").values_list("to_status", flat=True)
        )
        assert history == [S.PENDING_PAYMENT, S.PAID, S.CONFIRMED, S.SHIPPED, S.DELIVERED, S.COMPLETED]
        assert pushes.statuses(public_id) == [S.PAID, S.CONFIRMED, S.SHIPPED, S.DELIVERED, S.COMPLETED]
        assert pushes.traces(public_id)[-1]["parcel"]["state"] == "delivered"
    assert not ledger_verify(merchant_id=merchant.pk)
    assert not FulfilmentException.objects.exists()


@pytest.fixture
def confirmed(merchant, sim):  # type: ignore[no-untyped-def]
    """Three confirmed orders of three buyers, and the merchant's default Kuaidi100 account."""
    account = make_account(merchant, sim)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=10, limit=2)
    ids = [
        place(api, listing.pk, f"fan-{i}", address(f"买家{i}", f"1390000{i:04d}", f"文三路{i}号1栋10{i}"))
        for i in range(3)
    ]
    for public_id in ids:
        pay(public_id)
        confirm(public_id)
    return account, api, ids


def test_a_batch_run_twice_ships_nothing_twice(confirmed, sim) -> None:  # type: ignore[no-untyped-def]
    account, api, ids = confirmed
    batch = ship(account, ids)
    assert batch.status == ShipBatch.Status.DONE and batch.shipped == 3
    calls = len(sim.calls())
    events = OrderEvent.objects.count()
    # as if the worker died at the end, before writing any outcome: the next run takes over
    ShipBatch.objects.filter(pk=batch.pk).update(status=ShipBatch.Status.RUNNING, running_since=timezone.now())
    ShipBatchItem.objects.filter(batch=batch).update(result=ShipBatchItem.Result.PENDING)
    assert shipping.batch_run(batch.pk).status == ShipBatch.Status.RUNNING  # its lease holds: no second run
    ShipBatch.objects.filter(pk=batch.pk).update(running_since=timezone.now() - timedelta(minutes=20))
    again = shipping.batch_run(batch.pk)
    assert (again.status, again.shipped) == (ShipBatch.Status.DONE, 3)
    assert len(sim.calls()) == calls  # no waybill asked for again
    assert OrderEvent.objects.count() == events  # nothing shipped twice
    assert Parcel.objects.count() == 3

    r = api.post("/api/v1/shipments/batches", {"orders": ids}, format="json")  # shipped already
    assert r.status_code == 409 and r.json()["code"] == "not_confirmed"


def test_a_carrier_that_times_out_for_a_while_is_retried_and_nothing_ships_twice(confirmed, sim) -> None:  # type: ignore[no-untyped-def]
    account, _api, ids = confirmed
    sim.set_fault("timeout", 60, hang=0, methods=["label/order"])  # answers 504 at once, for now
    batch = ship(account, ids)
    assert (batch.status, batch.shipped, batch.failed) == (ShipBatch.Status.RETRYING, 0, 0)
    assert ShipBatchItem.objects.filter(batch=batch, result="retry").count() == 3
    assert set(Order.objects.filter(public_id__in=ids).values_list("status", flat=True)) == {S.CONFIRMED}
    sim.clear_fault()  # the carrier is back
    batch = shipping.batch_run(batch.pk, enqueue_retry=False)  # the scheduled retry
    assert (batch.status, batch.shipped, batch.failed, batch.attempts) == (ShipBatch.Status.DONE, 3, 0, 2)
    numbers = set(Parcel.objects.values_list("waybill_no", flat=True))
    assert len(numbers) == 3 and len(sim.calls("waybill")) == 3  # one waybill per parcel, drawn once
    assert set(Order.objects.filter(public_id__in=ids).values_list("status", flat=True)) == {S.SHIPPED}
    assert OrderEvent.objects.filter(order__public_id__in=ids, to_status=S.SHIPPED).count() == 3


def test_a_carrier_down_through_every_retry_leaves_the_orders_in_the_exception_queue(confirmed, sim) -> None:  # type: ignore[no-untyped-def]
    account, _api, ids = confirmed
    sim.set_fault("error", 600, methods=["label/order"])
    batch = ship(account, ids)
    for _ in shipping.RETRY_DELAYS:  # each scheduled retry
        batch = shipping.batch_run(batch.pk, enqueue_retry=False)
    assert (batch.status, batch.shipped, batch.failed) == (ShipBatch.Status.DONE, 0, 3)
    assert set(FulfilmentException.objects.values_list("kind", flat=True)) == {"carrier_rejected"}
    assert set(Order.objects.filter(public_id__in=ids).values_list("status", flat=True)) == {S.CONFIRMED}


def test_a_carrier_refusal_fails_those_parcels_into_the_exception_queue_and_a_new_batch_ships_them(  # type: ignore[no-untyped-def]
    confirmed, sim
) -> None:
    account, _api, ids = confirmed
    sim.set_fault("reject", 60, methods=["label/order"])
    batch = ship(account, ids[:2])
    assert (batch.status, batch.shipped, batch.failed) == (ShipBatch.Status.DONE, 0, 2)
    failed = ShipBatchItem.objects.filter(batch=batch, result="failed")
    assert {i.code for i in failed} == {"carrier_rejected"}
    assert FulfilmentException.objects.filter(kind="carrier_rejected", resolved_at__isnull=True).count() == 2
    sim.clear_fault()
    again = ship(account, ids)
    assert (again.shipped, again.failed) == (3, 0)


def test_a_bad_address_or_a_line_without_stock_never_reaches_the_carrier(confirmed, sim) -> None:  # type: ignore[no-untyped-def]
    account, _api, ids = confirmed
    bad = Order.objects.get(public_id=ids[0])
    bad.shipping_address = {**bad.shipping_address, "district": ""}
    bad.save(update_fields=["shipping_address"])
    short = Order.objects.get(public_id=ids[1])
    short.lines.update(reserved=False)
    batch = ship(account, ids)
    assert (batch.shipped, batch.failed) == (1, 2)
    kinds = dict(FulfilmentException.objects.values_list("order__public_id", "kind"))
    assert kinds == {ids[0]: "bad_address", ids[1]: "stock_short"}
    assert len(sim.calls("waybill")) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"orders": ["NOPE"]}, 400, "unknown_orders"),
        ({"orders": [], "session": 1}, 400, "invalid"),
        ({"session": 999999}, 400, "nothing_to_ship"),
        ({"session": 1, "status": "paid"}, 400, "invalid"),
        ({"session": 2**70}, 400, "invalid"),  # no id is that large (SQLite would overflow: once a 500)
        ({"orders": ["X"], "account": 2**63}, 400, "invalid"),
    ],
)
def test_bad_batches_are_refused_with_a_code_and_change_nothing(confirmed, body, status, code) -> None:  # type: ignore[no-untyped-def]
    _account, api, _ids = confirmed
    r = api.post("/api/v1/shipments/batches", body, format="json")
    assert (r.status_code, r.json()["code"]) == (status, code), r.content
    assert not ShipBatch.objects.exists()


def test_without_a_carrier_account_a_batch_is_a_409(merchant, api) -> None:  # type: ignore[no-untyped-def]
    listing = make_listing(merchant)
    public_id = place(api, listing.pk, "fan", address("王", "13900001111", "文三路1号1栋101"))
    pay(public_id)
    confirm(public_id)
    r = api.post("/api/v1/shipments/batches", {"orders": [public_id]}, format="json")
    assert (r.status_code, r.json()["code"]) == (409, "no_carrier_account")
    assert not ShipBatch.objects.exists()


def test_another_merchants_batches_and_orders_are_walled_off(confirmed, sim, other_merchant, other_api) -> None:  # type: ignore[no-untyped-def]
    account, api, ids = confirmed
    batch = ship(account, ids)
    assert batch.labels_file
    # their list does not show it; its page and its files are a 404 to them
    assert other_api.get("/api/v1/shipments/batches").json()["results"] == []
    assert other_api.get(f"/api/v1/shipments/batches/{batch.pk}").status_code == 404
    for name in ("labels", "picking.xlsx", "picking.csv"):
        assert other_api.get(f"/api/v1/shipments/batches/{batch.pk}/{name}").json()["code"] == "not_found"
        assert api.get(f"/api/v1/shipments/batches/{batch.pk}/{name}").status_code == 200
    # this merchant's orders in their batch are unknown to them, and nothing is written
    make_account(other_merchant, sim)
    r = other_api.post("/api/v1/shipments/batches", {"orders": ids}, format="json")
    assert (r.status_code, r.json()["code"], r.json()["extra"]["orders"]) == (400, "unknown_orders", ids)
    assert ShipBatch.objects.filter(merchant=other_merchant).count() == 0


def _tracking(waybill: str, states: list[tuple[str, str]]) -> Any:
    from apps.fulfilment.carriers.base import BEIJING, TrackEvent, Tracking

    base = timezone.now().astimezone(BEIJING)
    events = tuple(
        TrackEvent(at=(base + timedelta(minutes=i)).astimezone(UTC), text=text)
        for i, (_state, text) in enumerate(states)
    )
    return Tracking(
        carrier="kuaidi100",
        waybill_no=waybill,
        express="ZTO",
        state=states[-1][0],  # type: ignore[arg-type]
        carrier_state=states[-1][0],
        final=states[-1][0] == "delivered",
        events=events,
        raw={},
    )


def test_pushes_twice_or_out_of_order_change_nothing_twice_and_never_go_back(confirmed) -> None:  # type: ignore[no-untyped-def]
    account, _api, ids = confirmed
    batch = ship(account, ids[:1])
    parcel = Parcel.objects.get(pk=ShipBatchItem.objects.get(batch=batch).parcel_id)
    steps = [("collected", "已揽收"), ("in_transit", "运输中"), ("delivered", "已签收")]
    full = _tracking(parcel.waybill_no, steps)
    early = _tracking(parcel.waybill_no, steps[:2])
    early = type(early)(**{**early.__dict__, "events": full.events[:2]})
    assert tracking_apply(account, full)
    assert tracking_apply(account, full)  # delivered twice
    assert tracking_apply(account, early)  # an older push arriving late
    parcel.refresh_from_db()
    assert (parcel.status, parcel.track_state) == (Parcel.Status.DELIVERED, "delivered")
    assert TrackingEvent.objects.filter(parcel=parcel).count() == 3
    order = Order.objects.get(public_id=ids[0])
    assert order.status == S.DELIVERED
    assert OrderEvent.objects.filter(order=order, to_status=S.DELIVERED).count() == 1


def test_a_push_with_a_bad_signature_is_stored_refused_and_applies_nothing(confirmed, client) -> None:  # type: ignore[no-untyped-def]
    account, _api, _ids = confirmed
    r = client.post(
        f"/hooks/carriers/kuaidi100/{account.push_token}",
        data="param=%7B%7D&sign=BAD",
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 400 and r.json()["result"] is False
    push = CarrierPush.objects.get()
    assert push.outcome == CarrierPush.Outcome.REFUSED and push.body == "param=%7B%7D&sign=BAD"
    assert (
        client.post("/hooks/carriers/kuaidi100/not-a-token", data="x=1", content_type="text/plain").status_code == 404
    )


def test_auto_confirm_waits_for_risk_control_and_honours_the_merchants_window(confirmed, merchant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from apps.fulfilment.models import FulfilmentSettings

    account, api, _ids = confirmed
    listing = make_listing(merchant, quota=5, limit=1)
    public_id = place(api, listing.pk, "late-fan", address("赵", "13900009999", "文三路9号1栋909"))
    pay(public_id)
    later = timezone.now() + timedelta(minutes=31)
    assert automation.auto_confirm(now=later) == 0  # not assessed yet: it may still be flagged
    monkeypatch.setattr(scoring, "SETTLE_S", 0)
    scoring.score_pending()
    FulfilmentSettings.objects.create(merchant=merchant, confirm_after_minutes=60)
    assert automation.auto_confirm(now=later) == 0  # this merchant waits an hour
    assert automation.auto_confirm(now=later + timedelta(minutes=30)) == 1
    FulfilmentSettings.objects.filter(merchant=merchant).update(auto_confirm=False)
    assert Order.objects.get(public_id=public_id).status == S.CONFIRMED


def test_a_shipped_parcel_without_movement_goes_to_the_exception_queue_once(confirmed) -> None:  # type: ignore[no-untyped-def]
    account, _api, ids = confirmed
    ship(account, ids[:1])
    assert automation.flag_stale_parcels() == 0
    in_four_days = timezone.now() + timedelta(days=4)
    assert automation.flag_stale_parcels(now=in_four_days) == 1
    assert automation.flag_stale_parcels(now=in_four_days) == 0
    assert FulfilmentException.objects.get().kind == "no_movement"


def test_an_order_cancelled_after_its_waybill_is_skipped_and_leaves_its_parcel(confirmed, sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The ship step takes whole parcels per transaction through ``orders_transition_many``: an
    order cancelled after the waybills were drawn (a buyer's refund, between two steps) is skipped
    alone and taken out of its parcel; the other orders ship."""
    from apps.orders.services.transitions import order_cancel

    account, _api, ids = confirmed
    real = shipping._allocate_waybills

    def then_cancel(batch, account, parcels):  # type: ignore[no-untyped-def]
        real(batch, account, parcels)
        order_cancel(order=Order.objects.get(public_id=ids[1]), actor="staff:1", reason="refund")

    monkeypatch.setattr(shipping, "_allocate_waybills", then_cancel)
    batch = ship(account, ids)
    assert (batch.status, batch.shipped, batch.failed) == (ShipBatch.Status.DONE, 2, 0)
    results = dict(ShipBatchItem.objects.filter(batch=batch).values_list("order__public_id", "result"))
    assert results == {ids[0]: "shipped", ids[1]: "skipped", ids[2]: "shipped"}
    assert not ParcelOrder.objects.filter(order__public_id=ids[1]).exists()
    statuses = dict(Order.objects.filter(public_id__in=ids).values_list("public_id", "status"))
    assert statuses == {ids[0]: S.SHIPPED, ids[1]: S.REFUND_PENDING, ids[2]: S.SHIPPED}
    assert not ledger_verify(merchant_id=account.merchant_id)


def test_a_parcel_code_drawn_twice_makes_the_parcels_one_by_one(confirmed, sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Parcels are made many per statement; a code drawn twice in one chunk rolls the chunk back
    and it is made again parcel by parcel, each drawing a fresh code."""
    account, _api, ids = confirmed
    codes = iter(["PDUPLICATE", "PDUPLICATE", "PDUPLICATE", "PFRESH1", "PFRESH2", "PFRESH3"])
    monkeypatch.setattr(shipping, "new_parcel_code", lambda: next(codes))
    batch = ship(account, ids)
    assert (batch.status, batch.shipped) == (ShipBatch.Status.DONE, 3)
    assert sorted(Parcel.objects.values_list("code", flat=True)) == ["PFRESH1", "PFRESH2", "PFRESH3"]


def test_a_batch_of_nine_orders_takes_about_as_many_queries_as_one_of_three(merchant, sim) -> None:  # type: ignore[no-untyped-def]
    """The statements of a batch are per step and chunk, not per order."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account = make_account(merchant, sim)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=20, limit=20)
    ids = []
    for i in range(12):
        public_id = place(api, listing.pk, f"q-{i}", address(f"买家{i}", f"1391111{i:04d}", f"文二路{i}号"))
        pay(public_id)
        confirm(public_id)
        ids.append(public_id)
    counts = []
    for chosen in (ids[:3], ids[3:]):
        with CaptureQueriesContext(connection) as ctx:
            ship(account, chosen)
        counts.append(len(ctx.captured_queries))
    assert counts[1] - counts[0] <= 6, counts  # 3 more orders (and parcels, labels ...) cost a few queries at most


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_the_django_q2_worker_draws_a_big_batchs_labels_in_worker_processes(merchant, sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The worker ./run starts runs the batch; its labels are drawn by processes it starts
    (``LABEL_PARALLEL_FROM`` lowered so that three parcels are a big batch): a daemonic worker
    could not start them."""
    import subprocess
    import sys

    from django.conf import settings as django_settings
    from django.core.files.storage import storages
    from django_q.conf import Conf

    from .. import servers

    account = make_account(merchant, sim)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(merchant)}")
    listing = make_listing(merchant, quota=10, limit=2)
    ids = [
        place(api, listing.pk, f"fan-{i}", address(f"买家{i}", f"1390000{i:04d}", f"文三路{i}号1栋10{i}"))
        for i in range(3)
    ]
    for public_id in ids:
        pay(public_id)
        confirm(public_id)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=django_settings.BASE_DIR,
        env=servers.child_env(
            LC_Q_SYNC="0",
            Q_WORKERS="1",
            LABEL_PARALLEL_FROM="2",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        monkeypatch.setattr(Conf, "SYNC", False)  # queued for the worker, not run here
        batch = shipping.batch_create(merchant_id=account.merchant_id, actor="test", orders=ids)

        def done() -> bool:
            assert worker.poll() is None, "qcluster exited"
            batch.refresh_from_db()
            return batch.status == ShipBatch.Status.DONE

        wait_until(done, timeout=120, interval=0.5, what="the worker to run the batch")
        assert (batch.shipped, batch.failed) == (3, 0)
        with storages["exports"].open(batch.labels_file) as f:
            pdf = f.read()
    finally:
        servers.stop(worker, grace=5)
    assert b"WenQuanYiZenHei-0-p1" in pdf  # drawn in parts by worker processes
    import pypdfium2 as pdfium

    with pdfium.PdfDocument(pdf) as doc:
        assert len(doc) == 3
