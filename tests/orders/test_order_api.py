from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.catalog.models import Listing
from apps.inventory.models import Stock
from apps.orders.models import Order, OrderStatus

from ..factories import make_listing, order_body
from .invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)


def post_order(api, body, key=None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/v1/orders", body, format="json", **headers)


def test_order_create_returns_201_with_status_url_and_deadline(api, merchant):
    listing = make_listing(merchant, quota=5, price="19.90", limit=2)
    r = post_order(api, order_body(listing.pk, quantity=2), key="k1")
    assert r.status_code == 201, r.content
    data = r.json()
    assert data["status"] == "pending_payment"
    assert data["total"] == "39.80"
    assert data["pay_by"]
    assert data["status_url"].startswith("http://testserver/o/" + data["id"] + "/?t=")
    listing.refresh_from_db()
    assert listing.sold == 2
    assert Stock.objects.get(sku=listing.sku).reserved == 2


def test_order_create_same_key_same_body_returns_same_order(api, merchant):
    listing = make_listing(merchant, quota=5)
    first = post_order(api, order_body(listing.pk), key="same")
    again = post_order(api, order_body(listing.pk), key="same")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


def test_order_create_same_key_other_body_is_422(api, merchant):
    listing = make_listing(merchant, quota=5, limit=3)
    post_order(api, order_body(listing.pk), key="same")
    r = post_order(api, order_body(listing.pk, quantity=2), key="same")
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_reused"


def test_sold_out_is_409_and_opens_no_database_transaction(api, merchant):
    listing = make_listing(merchant, quota=1)
    assert post_order(api, order_body(listing.pk, buyer="a")).status_code == 201
    post_order(api, order_body(listing.pk, buyer="warm"))  # warms token and listing caches
    with CaptureQueriesContext(connection) as ctx:
        r = post_order(api, order_body(listing.pk, buyer="b"))
    assert r.status_code == 409
    assert r.json()["code"] == "sold_out"
    assert len(ctx.captured_queries) == 0, [q["sql"] for q in ctx.captured_queries]


def test_over_buyer_limit_is_409(api, merchant):
    listing = make_listing(merchant, quota=5, limit=2)
    assert post_order(api, order_body(listing.pk, quantity=2)).status_code == 201
    r = post_order(api, order_body(listing.pk, quantity=1))
    assert r.status_code == 409
    assert r.json()["code"] == "over_buyer_limit"


def test_closed_listing_is_409(api, merchant):
    listing = make_listing(merchant, quota=5, open_=False)
    r = post_order(api, order_body(listing.pk))
    assert r.status_code == 409
    assert r.json()["code"] == "listing_closed"


def test_other_merchants_listing_is_404(api, other_merchant):
    listing = make_listing(other_merchant, quota=5)
    r = post_order(api, order_body(listing.pk))
    assert r.status_code == 404
    assert r.json()["code"] == "listing_not_found"
    assert Listing.objects.get(pk=listing.pk).sold == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"listing": "x", "quantity": 1},
        {"listing": 1, "quantity": 0},
        {"listing": 1, "quantity": 10**30},
        {"listing": 10**30, "quantity": 1},
        [],
        "text",
    ],
)
def test_malformed_order_is_400_with_code(api, merchant, body):
    r = api.post("/api/v1/orders", body, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid"


def test_broken_json_is_400(api):
    r = api.post("/api/v1/orders", data="{not json", content_type="application/json")
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_request"


def test_cancel_releases_stock_once(api, merchant):
    listing = make_listing(merchant, quota=3)
    oid = post_order(api, order_body(listing.pk)).json()["id"]
    r1 = api.post(f"/api/v1/orders/{oid}/cancel", {"reason": "changed mind"}, format="json")
    assert r1.status_code == 200 and r1.json()["status"] == "cancelled"
    r2 = api.post(f"/api/v1/orders/{oid}/cancel", {}, format="json")
    assert r2.status_code == 409 and r2.json()["code"] == "invalid_transition"
    listing.refresh_from_db()
    assert listing.sold == 0
    assert Stock.objects.get(sku=listing.sku).reserved == 0
    assert Order.objects.get(public_id=oid).status == OrderStatus.CANCELLED


def test_replay_of_a_cancelled_order_returns_it_even_when_sold_out(api, merchant):
    """The gate remembers every key it held: a replay after cancellation finds its order instead
    of the sold-out answer meant for new buyers."""
    listing = make_listing(merchant, quota=1)
    first = post_order(api, order_body(listing.pk, buyer="a"), key="ka")
    assert first.status_code == 201
    oid = first.json()["id"]
    assert api.post(f"/api/v1/orders/{oid}/cancel", {}, format="json").status_code == 200
    assert post_order(api, order_body(listing.pk, buyer="b"), key="kb").status_code == 201
    assert post_order(api, order_body(listing.pk, buyer="c"), key="kc").json()["code"] == "sold_out"
    again = post_order(api, order_body(listing.pk, buyer="a"), key="ka")
    assert again.status_code == 200, again.content
    assert again.json()["id"] == oid
    assert again.json()["status"] == "cancelled"
    other = post_order(api, order_body(listing.pk, buyer="a", quantity=2), key="ka")
    assert other.status_code == 422
    assert_consistent(listing.pk, expect_sold=1)


def _failing_ledger(on: bool) -> None:
    """A real failure inside the database on the last row an order writes."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            if on:
                cur.execute(
                    "CREATE OR REPLACE FUNCTION lc_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                )
                cur.execute(
                    "CREATE TRIGGER lc_test_fail BEFORE INSERT ON orders_orderevent "
                    "FOR EACH ROW EXECUTE FUNCTION lc_test_fail()"
                )
            else:
                cur.execute("DROP TRIGGER IF EXISTS lc_test_fail ON orders_orderevent")
        elif on:
            cur.execute(
                "CREATE TRIGGER lc_test_fail BEFORE INSERT ON orders_orderevent "
                "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        else:
            cur.execute("DROP TRIGGER IF EXISTS lc_test_fail")


def test_a_key_whose_first_attempt_failed_in_the_database_can_be_retried(api, merchant):
    listing = make_listing(merchant, quota=2, limit=1)
    post_order(api, order_body(listing.pk, buyer="warm"), key="warm")  # the ledger head exists
    _failing_ledger(True)
    try:
        failed = post_order(api, order_body(listing.pk, buyer="a"), key="retry-me")
    finally:
        _failing_ledger(False)
    assert failed.status_code == 503, failed.content
    assert failed.json()["code"] == "temporarily_unavailable"
    assert_consistent(listing.pk, expect_sold=1)  # nothing half-written, the hold given back
    again = post_order(api, order_body(listing.pk, buyer="a"), key="retry-me")
    assert again.status_code == 201, again.content
    assert_consistent(listing.pk, expect_sold=2)


def test_more_than_the_buyer_limit_in_one_order_is_refused_by_the_database_too(api, merchant, settings):
    """With Redis gone the database alone decides, and a first order above the limit is refused."""
    from apps.core import redis as core_redis

    listing = make_listing(merchant, quota=10, limit=2)
    dead = "redis://127.0.0.1:1/0"
    settings.REDIS_URL = dead
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "LOCATION": dead}}
    core_redis.reset_clients()
    try:
        r = post_order(api, order_body(listing.pk, buyer="big", quantity=3), key="big")
        ok = post_order(api, order_body(listing.pk, buyer="big", quantity=2), key="fits")
    finally:
        core_redis.reset_clients()
    assert r.status_code == 409, r.content
    assert r.json()["code"] == "over_buyer_limit"
    assert ok.status_code == 201, ok.content
    assert_consistent(listing.pk, expect_sold=2, check_redis=False)


@pytest.mark.parametrize("batching", [True, False])
def test_placement_answers_the_same_with_and_without_batching(api, merchant, settings, batching):
    settings.ORDER_BATCHING = batching
    listing = make_listing(merchant, quota=3, limit=2, price="5.00")
    first = post_order(api, order_body(listing.pk, buyer="a", quantity=2), key="b1")
    assert first.status_code == 201, first.content
    assert first.json()["total"] == "10.00"
    assert post_order(api, order_body(listing.pk, buyer="a", quantity=2), key="b1").status_code == 200
    over = post_order(api, order_body(listing.pk, buyer="a"), key="b2")
    assert over.status_code == 409 and over.json()["code"] == "over_buyer_limit"
    assert post_order(api, order_body(listing.pk, buyer="b"), key="b3").status_code == 201
    sold = post_order(api, order_body(listing.pk, buyer="c"), key="b4")
    assert sold.status_code == 409 and sold.json()["code"] == "sold_out"
    assert_consistent(listing.pk, expect_sold=3)


def test_a_key_reused_on_another_listing_is_422_and_holds_nothing_there(api, merchant):
    """The gate remembers hold ids per listing, so on a second listing the key looks new: the
    database's unique key catches it, and the hold taken for it on that listing goes back."""
    first, second = make_listing(merchant, quota=5, limit=1), make_listing(merchant, quota=5, limit=1)
    assert post_order(api, order_body(first.pk, buyer="a"), key="shared").status_code == 201
    reused = post_order(api, order_body(second.pk, buyer="a"), key="shared")
    assert reused.status_code == 422, reused.content
    assert reused.json()["code"] == "idempotency_key_reused"
    assert_consistent(second.pk, expect_sold=0)  # Redis included: no hold left behind
    fresh = post_order(api, order_body(second.pk, buyer="a"), key="fresh")
    assert fresh.status_code == 201, fresh.content  # the buyer is not locked out by a leaked hold


def test_a_replay_after_cancellation_that_the_gate_forgot_returns_the_order_and_holds_nothing(api, merchant):
    """Redis lost its memory of the key (flush): the replay takes a fresh hold, the database
    finds the cancelled order, and the fresh hold goes back."""
    from apps.core.redis import get_client

    listing = make_listing(merchant, quota=2, limit=1)
    oid = post_order(api, order_body(listing.pk, buyer="a"), key="k").json()["id"]
    assert api.post(f"/api/v1/orders/{oid}/cancel", {}, format="json").status_code == 200
    get_client().flushdb()
    again = post_order(api, order_body(listing.pk, buyer="a"), key="k")
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "cancelled"
    assert_consistent(listing.pk, expect_sold=0)
    assert post_order(api, order_body(listing.pk, buyer="a"), key="k2").status_code == 201


def test_a_lone_surrogate_is_a_400_not_a_500(api, merchant):
    listing = make_listing(merchant, quota=2)
    body = order_body(listing.pk, buyer="xSURROGATE")
    raw = json.dumps(body).replace("SURROGATE", "\\ud800")  # JSON's escape for a lone surrogate
    assert "\\ud800" in raw
    r = api.post("/api/v1/orders", raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY="s1")
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "invalid"
