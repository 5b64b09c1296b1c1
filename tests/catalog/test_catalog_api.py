"""The catalog API for streamer tools: CRUD flows, validation errors with codes, pagination and
filters, the stock adjust endpoint, and the API token lifecycle."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.inventory.models import Stock, StockMovement
from apps.merchants.models import ApiToken, Merchant
from apps.merchants.services import api_token_revoke

from ..factories import ProductFactory, make_listing, make_session, make_sku, make_token, order_body

pytestmark = pytest.mark.django_db


def error(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    """Assert the API's error shape and return its body."""
    assert r.status_code == status, (r.status_code, r.content)
    body = r.json()
    assert set(body) == {"code", "message", "extra"}, body
    assert body["code"] == code, body
    assert body["message"]
    return body


def later(**kw: int) -> str:
    return (timezone.now() + timedelta(**kw)).isoformat()


# --- products --------------------------------------------------------------------------------
def test_product_create_list_retrieve_and_patch(api):  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/products", {"name": "Silk scarf", "description": "100% 桑蚕丝"}, format="json")
    assert r.status_code == 201, r.content
    pid = r.json()["id"]
    assert r.json()["is_active"] is True
    assert api.get(f"/api/v1/products/{pid}").json()["name"] == "Silk scarf"
    r = api.patch(f"/api/v1/products/{pid}", {"name": "Silk scarf II", "is_active": False}, format="json")
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["is_active"]) == ("Silk scarf II", False)
    assert [p["id"] for p in api.get("/api/v1/products").json()["results"]] == [pid]


def test_product_create_can_start_inactive(api, merchant):  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/products", {"name": "Draft", "is_active": False}, format="json")
    assert r.status_code == 201, r.content
    assert Product.objects.get(pk=r.json()["id"]).is_active is False


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": None}, {"name": {"zh": "x"}}, {"name": ["x"]}, {"name": "x" * 201}, {"name": "a\x00"}],
)
def test_product_create_rejects_bad_names(api, body):  # type: ignore[no-untyped-def]
    body = error(api.post("/api/v1/products", body, format="json"), 400, "invalid")
    assert "name" in body["extra"]["fields"]
    assert not Product.objects.exists()


def test_product_category_is_written_read_and_changed(api):  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/products", {"name": "丝绒哑光口红", "category": " 美妆 "}, format="json")
    assert r.status_code == 201, r.content
    pid = r.json()["id"]
    assert r.json()["category"] == "美妆" and Product.objects.get(pk=pid).category == "美妆"
    assert api.get(f"/api/v1/products/{pid}").json()["category"] == "美妆"
    r = api.patch(f"/api/v1/products/{pid}", {"name": "口红"}, format="json")
    assert r.json()["category"] == "美妆"  # a patch without it keeps it
    r = api.patch(f"/api/v1/products/{pid}", {"category": ""}, format="json")
    assert r.status_code == 200 and r.json()["category"] == ""
    r = api.post("/api/v1/products", {"name": "No category"}, format="json")
    assert r.json()["category"] == ""


@pytest.mark.parametrize("category", ["x" * 51, None, ["美妆"], {"zh": "美妆"}])
def test_product_category_refuses_what_is_not_a_short_name(api, category):  # type: ignore[no-untyped-def]
    body = error(api.post("/api/v1/products", {"name": "x", "category": category}, format="json"), 400, "invalid")
    assert "category" in body["extra"]["fields"]
    assert not Product.objects.exists()


# --- SKUs ------------------------------------------------------------------------------------
def sku_body(product: Product, /, **over: object) -> dict:
    return {"product": product.pk, "code": "SCARF-RED", "name": "Red", "price": "129.00", "on_hand": 40, **over}


def test_sku_create_reads_stock_and_patch_sets_price_and_on_hand(api, merchant):  # type: ignore[no-untyped-def]
    product = ProductFactory(merchant=merchant)
    r = api.post("/api/v1/skus", sku_body(product), format="json")
    assert r.status_code == 201, r.content
    data = r.json()
    assert (data["price"], data["on_hand"], data["reserved"], data["available"]) == ("129.00", 40, 0, 40)
    sid = data["id"]
    r = api.patch(f"/api/v1/skus/{sid}", {"price": "99.50", "on_hand": 55}, format="json")
    assert r.status_code == 200, r.content
    assert (r.json()["price"], r.json()["on_hand"], r.json()["available"]) == ("99.50", 55, 55)
    assert Stock.objects.get(sku_id=sid).on_hand == 55
    assert StockMovement.objects.filter(sku_id=sid).values_list("on_hand_delta", flat=True).order_by("id")[::1] == [
        40,
        15,
    ]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-1.00"}, "price"),
        ({"price": "0.001"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "1e400"}, "price"),
        ({"price": "NaN"}, "price"),
        ({"price": "99999999999999.00"}, "price"),
        ({"price": ["1"]}, "price"),
        ({"on_hand": -1}, "on_hand"),
        ({"on_hand": 10**30}, "on_hand"),
        ({"on_hand": "many"}, "on_hand"),
        ({"on_hand": 1.5}, "on_hand"),
        ({"code": ""}, "code"),
        ({"code": "x" * 65}, "code"),
        ({"code": {"a": 1}}, "code"),
        ({"product": "abc"}, "product"),
        ({"product": 10**30}, "product"),
        ({"product": None}, "product"),
    ],
)
def test_sku_create_rejects_bad_fields(api, merchant, over, field):  # type: ignore[no-untyped-def]
    product = ProductFactory(merchant=merchant)
    body = error(api.post("/api/v1/skus", sku_body(product, **over), format="json"), 400, "invalid")
    assert field in body["extra"]["fields"]
    assert not SKU.objects.exists()


def test_sku_code_must_be_unique_per_merchant(api, merchant, other_merchant):  # type: ignore[no-untyped-def]
    make_sku(other_merchant, code="SCARF-RED")  # another merchant's code does not clash
    product = ProductFactory(merchant=merchant)
    assert api.post("/api/v1/skus", sku_body(product), format="json").status_code == 201
    body = error(api.post("/api/v1/skus", sku_body(product), format="json"), 400, "duplicate_code")
    assert body["extra"]["field"] == "code"
    other = api.post("/api/v1/skus", sku_body(product, code="SCARF-BLUE"), format="json").json()
    error(api.patch(f"/api/v1/skus/{other['id']}", {"code": "SCARF-RED"}, format="json"), 400, "duplicate_code")
    assert SKU.objects.filter(merchant=merchant).count() == 2


def test_sku_patch_cannot_set_on_hand_below_reserved(api, merchant):  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=5, on_hand=5, limit=3)
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=3), format="json").status_code == 201
    error(api.patch(f"/api/v1/skus/{listing.sku_id}", {"on_hand": 2}, format="json"), 409, "insufficient_stock")
    assert Stock.objects.get(sku=listing.sku).on_hand == 5


# --- stock adjust ----------------------------------------------------------------------------
def test_stock_adjust_receives_and_corrects_stock(api, merchant):  # type: ignore[no-untyped-def]
    sku = make_sku(merchant, on_hand=10)
    r = api.post(
        f"/api/v1/skus/{sku.pk}/stock", {"delta": 25, "reason": "delivery", "reference": "PO-7"}, format="json"
    )
    assert r.status_code == 200, r.content
    assert (r.json()["on_hand"], r.json()["available"]) == (35, 35)
    r = api.post(f"/api/v1/skus/{sku.pk}/stock", {"delta": -5, "reason": "damaged"}, format="json")
    assert r.json()["on_hand"] == 30
    moves = list(StockMovement.objects.filter(sku=sku).order_by("id").values_list("kind", "on_hand_delta", "reason"))
    assert moves[-2:] == [("receive", 25, "delivery"), ("adjust", -5, "damaged")]


def test_stock_adjust_shrinks_listing_quota_to_what_is_left(api, merchant):  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=10, on_hand=10)
    r = api.post(f"/api/v1/skus/{listing.sku_id}/stock", {"delta": -4, "reason": "count"}, format="json")
    assert r.status_code == 200
    assert api.get(f"/api/v1/listings/{listing.pk}").json()["quota"] == 6


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"delta": 5}, 400, "invalid"),
        ({"reason": "x"}, 400, "invalid"),
        ({"delta": "five", "reason": "x"}, 400, "invalid"),
        ({"delta": 10**12, "reason": "x"}, 400, "invalid"),
        ({"delta": 1.5, "reason": "x"}, 400, "invalid"),
        ({"delta": 5, "reason": ""}, 400, "invalid"),
        ({"delta": 5, "reason": "x", "kind": "steal"}, 400, "invalid"),
        ({"delta": 0, "reason": "x"}, 400, "invalid_stock_change"),
        ({"delta": -5, "reason": "x", "kind": "receive"}, 400, "invalid_stock_change"),
        ({"delta": -11, "reason": "x"}, 409, "insufficient_stock"),
    ],
)
def test_stock_adjust_rejects_bad_input_and_changes_nothing(api, merchant, body, status, code):  # type: ignore[no-untyped-def]
    sku = make_sku(merchant, on_hand=10)
    moves = StockMovement.objects.count()
    error(api.post(f"/api/v1/skus/{sku.pk}/stock", body, format="json"), status, code)
    assert Stock.objects.get(sku=sku).on_hand == 10
    assert StockMovement.objects.count() == moves


# --- live shows ------------------------------------------------------------------------------
def test_session_lifecycle_create_patch_start_end(api, merchant):  # type: ignore[no-untyped-def]
    body = {"title": "Spring sale", "streamer": "小王", "platforms": ["douyin", "storefront"], "scheduled_at": later()}
    r = api.post("/api/v1/sessions", body, format="json")
    assert r.status_code == 201, r.content
    sid = r.json()["id"]
    assert (r.json()["status"], r.json()["platforms"]) == ("scheduled", ["douyin", "storefront"])
    r = api.patch(f"/api/v1/sessions/{sid}", {"title": "Spring sale!", "platforms": ["kuaishou"]}, format="json")
    assert (r.json()["title"], r.json()["platforms"]) == ("Spring sale!", ["kuaishou"])
    r = api.post(f"/api/v1/sessions/{sid}/start")
    assert r.status_code == 200 and r.json()["status"] == "live" and r.json()["started_at"]
    r = api.post(f"/api/v1/sessions/{sid}/end")
    assert r.status_code == 200 and r.json()["status"] == "ended" and r.json()["ended_at"]
    error(api.post(f"/api/v1/sessions/{sid}/start"), 409, "session_ended")
    error(api.patch(f"/api/v1/sessions/{sid}", {"title": "again"}, format="json"), 409, "session_ended")
    assert api.post(f"/api/v1/sessions/{sid}/end").status_code == 200  # ending twice is harmless


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"platforms": ["tiktok"]}, "platforms"),
        ({"platforms": "douyin"}, "platforms"),
        ({"platforms": [["douyin"]]}, "platforms"),
        ({"platforms": ["douyin"] * 5}, "platforms"),
        ({"title": ""}, "title"),
        ({"streamer": None}, "streamer"),
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"scheduled_at": "0001-01-01T00:00:00Z"}, "scheduled_at"),
        ({"scheduled_at": "9999-12-31T23:59:59-14:00"}, "scheduled_at"),
        ({"scheduled_at": 1700000000}, "scheduled_at"),
    ],
)
def test_session_create_rejects_bad_fields(api, merchant, over, field):  # type: ignore[no-untyped-def]
    body = {"title": "Show", "streamer": "Host", "platforms": ["douyin"], **over}
    body = error(api.post("/api/v1/sessions", body, format="json"), 400, "invalid")
    assert field in body["extra"]["fields"]
    assert not LiveSession.objects.exists()


def test_ending_a_show_closes_its_listings(api, merchant):  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=3)
    api.post(f"/api/v1/sessions/{listing.session_id}/end")
    assert api.get(f"/api/v1/listings/{listing.pk}").json()["status"] == "closed"


# --- listings --------------------------------------------------------------------------------
def listing_body(sku: SKU, session: LiveSession, /, **over: object) -> dict:
    return {"session": session.pk, "sku": sku.pk, "price": "9.90", "quota": 10, "per_buyer_limit": 2, **over}


def test_listing_create_open_close_and_reads(api, merchant):  # type: ignore[no-untyped-def]
    sku, session = make_sku(merchant, on_hand=30), make_session(merchant)
    r = api.post("/api/v1/listings", listing_body(sku, session), format="json")
    assert r.status_code == 201, r.content
    data = r.json()
    assert (data["status"], data["quota"], data["sold"], data["available"]) == ("scheduled", 10, 0, 10)
    assert data["payment_window_seconds"] == 900
    lid = data["id"]
    r = api.post(f"/api/v1/listings/{lid}/open")
    assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["opens_at"]
    assert api.get(f"/api/v1/sessions/{session.pk}").json()["status"] == "live"  # opening a listing starts the show
    r = api.patch(f"/api/v1/listings/{lid}", {"price": "8.80", "quota": 12}, format="json")
    assert (r.json()["price"], r.json()["quota"]) == ("8.80", 12)
    r = api.post(f"/api/v1/listings/{lid}/close")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    error(api.post(f"/api/v1/listings/{lid}/open"), 409, "invalid_listing_state")
    error(api.patch(f"/api/v1/listings/{lid}", {"price": "1.00"}, format="json"), 409, "invalid_listing_state")


def test_listing_with_a_window_is_scheduled_until_it_opens(api, merchant):  # type: ignore[no-untyped-def]
    sku, session = make_sku(merchant, on_hand=5), make_session(merchant)
    body = listing_body(sku, session, quota=5, opens_at=later(hours=1), closes_at=later(hours=2))
    r = api.post("/api/v1/listings", body, format="json")
    assert r.status_code == 201 and r.json()["status"] == "scheduled"


def test_listing_quota_above_supply_is_400_quota_exceeds_supply(api, merchant):  # type: ignore[no-untyped-def]
    sku, session = make_sku(merchant, on_hand=10), make_session(merchant)
    body = error(
        api.post("/api/v1/listings", listing_body(sku, session, quota=11), format="json"), 400, "quota_exceeds_supply"
    )
    assert body["extra"]["supply"] == 10
    # two listings cannot carve the same units
    assert api.post("/api/v1/listings", listing_body(sku, session, quota=7), format="json").status_code == 201
    body = error(
        api.post("/api/v1/listings", listing_body(sku, session, quota=4), format="json"), 400, "quota_exceeds_supply"
    )
    assert body["extra"]["supply"] == 3
    lid = Listing.objects.get(quota=7).pk
    error(api.patch(f"/api/v1/listings/{lid}", {"quota": 11}, format="json"), 400, "quota_exceeds_supply")
    assert Listing.objects.count() == 1


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-9.90"}, "price"),
        ({"quota": 0}, "quota"),
        ({"quota": 10**30}, "quota"),
        ({"quota": "lots"}, "quota"),
        ({"per_buyer_limit": 0}, "per_buyer_limit"),
        ({"per_buyer_limit": -1}, "per_buyer_limit"),
        ({"payment_window_seconds": 5}, "payment_window_seconds"),
        ({"payment_window_seconds": 10**12}, "payment_window_seconds"),
        ({"opens_at": "2030-01-02T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z"}, "closes_at"),
        ({"opens_at": "2030-01-01T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z"}, "closes_at"),
        ({"opens_at": "not a date"}, "opens_at"),
        ({"sku": None}, "sku"),
        ({"session": "1; DROP TABLE"}, "session"),
    ],
)
def test_listing_create_rejects_bad_fields(api, merchant, over, field):  # type: ignore[no-untyped-def]
    sku, session = make_sku(merchant, on_hand=10), make_session(merchant)
    body = error(api.post("/api/v1/listings", listing_body(sku, session, **over), format="json"), 400, "invalid")
    assert field in body["extra"]["fields"]
    assert not Listing.objects.exists()


def test_listing_patch_rejects_window_ending_before_it_opens(api, merchant):  # type: ignore[no-untyped-def]
    listing = make_listing(merchant, quota=2, open_=False)
    r = api.patch(f"/api/v1/listings/{listing.pk}", {"opens_at": later(hours=3)}, format="json")
    assert r.status_code == 200
    body = error(
        api.patch(f"/api/v1/listings/{listing.pk}", {"closes_at": later(hours=2)}, format="json"), 400, "invalid"
    )
    assert "closes_at" in body["extra"]["fields"]


def test_ended_show_cannot_get_or_open_a_listing(api, merchant):  # type: ignore[no-untyped-def]
    sku = make_sku(merchant, on_hand=10)
    session = make_session(merchant)
    waiting = make_listing(merchant, sku=sku, session=session, quota=2, open_=False)
    api.post(f"/api/v1/sessions/{session.pk}/end")
    error(api.post(f"/api/v1/listings/{waiting.pk}/open"), 409, "session_ended")
    error(api.post("/api/v1/listings", listing_body(sku, session, quota=1), format="json"), 409, "session_ended")
    assert Listing.objects.count() == 1


# --- malformed requests ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [b'{"name": ', b"[" * 100_000, b'{"name": NaN}', b"\xff\xfe{", b"", b'{"name": "x"} trailing'],
    ids=["truncated", "deeply-nested", "nan", "not-utf8", "empty", "trailing"],
)
def test_malformed_json_is_400_malformed_request(api, raw):  # type: ignore[no-untyped-def]
    r = api.generic("POST", "/api/v1/products", raw, content_type="application/json")
    if raw == b"":
        error(r, 400, "invalid")  # no body: the name is missing
    else:
        error(r, 400, "malformed_request")
    assert not Product.objects.exists()


@pytest.mark.parametrize("raw", [b"[]", b'"scarf"', b"42", b"null"])
def test_json_that_is_not_an_object_is_400(api, raw):  # type: ignore[no-untyped-def]
    error(api.generic("POST", "/api/v1/products", raw, content_type="application/json"), 400, "invalid")


def test_other_content_types_are_415(api):  # type: ignore[no-untyped-def]
    error(
        api.generic("POST", "/api/v1/products", b"name=x", content_type="application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
    )


def test_unknown_method_is_405_with_code(api, merchant):  # type: ignore[no-untyped-def]
    sku = make_sku(merchant)
    error(api.delete(f"/api/v1/skus/{sku.pk}"), 405, "method_not_allowed")
    error(api.put(f"/api/v1/skus/{sku.pk}", {}, format="json"), 405, "method_not_allowed")
    assert SKU.objects.filter(pk=sku.pk).exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/skus/999999", "/api/v1/listings/0/open", "/api/v1/sessions/123456789012345678"]
)
def test_unknown_ids_are_404_not_found(api, path):  # type: ignore[no-untyped-def]
    method = api.post if path.endswith("/open") else api.get
    error(method(path), 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/v1/skus/99999999999999999999999", "/api/v1/skus/abc", "/api/v1/skus/-1", "/api/v1/nothing-here"]
)
def test_unroutable_api_paths_are_json_404_not_found(api, path):  # type: ignore[no-untyped-def]
    error(api.get(path), 404, "not_found")


# --- pagination and filters ------------------------------------------------------------------
def test_lists_are_paginated(api, merchant):  # type: ignore[no-untyped-def]
    for i in range(5):
        make_session(merchant, title=f"Show {i}")
    r = api.get("/api/v1/sessions", {"page_size": 2})
    data = r.json()
    assert (data["count"], len(data["results"]), data["previous"]) == (5, 2, None)
    assert data["next"]
    last = api.get("/api/v1/sessions", {"page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    seen = {
        s["id"]
        for page in (1, 2, 3)
        for s in api.get("/api/v1/sessions", {"page_size": 2, "page": page}).json()["results"]
    }
    assert len(seen) == 5
    error(api.get("/api/v1/sessions", {"page": 4, "page_size": 2}), 404, "not_found")
    error(api.get("/api/v1/sessions", {"page": "x"}), 404, "not_found")
    assert len(api.get("/api/v1/sessions", {"page_size": 10**9}).json()["results"]) == 5


def test_listings_filter_by_status_and_show(api, merchant):  # type: ignore[no-untyped-def]
    show1, show2 = make_session(merchant, "one"), make_session(merchant, "two")
    open1 = make_listing(merchant, quota=1, session=show1)
    waiting1 = make_listing(merchant, quota=1, session=show1, open_=False)
    waiting2 = make_listing(merchant, quota=1, session=show2, open_=False)

    def ids(**params: object) -> set[int]:
        r = api.get("/api/v1/listings", params)
        assert r.status_code == 200, r.content
        return {x["id"] for x in r.json()["results"]}

    assert ids(status="open") == {open1.pk}
    assert ids(status="scheduled") == {waiting1.pk, waiting2.pk}
    assert ids(session=show1.pk) == {open1.pk, waiting1.pk}
    assert ids(session=show2.pk, status="scheduled") == {waiting2.pk}
    assert ids(sku=open1.sku_id) == {open1.pk}
    assert ids(session=999999) == set()
    error(api.get("/api/v1/listings", {"status": "sold"}), 400, "invalid")
    error(api.get("/api/v1/listings", {"session": "abc"}), 400, "invalid")


def test_listing_status_filter_matches_the_status_reads_show(api, merchant):  # type: ignore[no-untyped-def]
    """A listing's status follows its window: the filter answers by the same rule as the reads."""
    sku, session = make_sku(merchant, on_hand=100), make_session(merchant)

    def create(**window: str) -> int:
        r = api.post("/api/v1/listings", listing_body(sku, session, quota=1, **window), format="json")
        assert r.status_code == 201, r.content
        return r.json()["id"]

    window_open = create(opens_at=later(hours=-1), closes_at=later(hours=1))
    window_over = create(opens_at=later(hours=-2), closes_at=later(hours=-1))
    window_ahead = create(opens_at=later(hours=1))
    opened_then_expired = create(opens_at=later(hours=-2), closes_at=later(hours=1))
    api.post(f"/api/v1/listings/{opened_then_expired}/open")
    Listing.objects.filter(pk=opened_then_expired).update(closes_at=timezone.now() - timedelta(seconds=1))
    opened_early = create(opens_at=later(hours=2))
    Listing.objects.filter(pk=opened_early).update(status=Listing.Status.OPEN)  # opened, window still ahead

    shown = {x["id"]: x["status"] for x in api.get("/api/v1/listings").json()["results"]}
    assert shown == {
        window_open: "open",
        window_over: "closed",
        window_ahead: "scheduled",
        opened_then_expired: "closed",
        opened_early: "scheduled",
    }
    for status in ("open", "scheduled", "closed"):
        got = {x["id"] for x in api.get("/api/v1/listings", {"status": status}).json()["results"]}
        assert got == {i for i, s in shown.items() if s == status}, status


def test_sessions_filter_by_status_and_skus_by_product(api, merchant):  # type: ignore[no-untyped-def]
    live, _ = make_session(merchant, "live"), make_session(merchant, "later")
    api.post(f"/api/v1/sessions/{live.pk}/start")
    assert [s["id"] for s in api.get("/api/v1/sessions", {"status": "live"}).json()["results"]] == [live.pk]
    a, _ = make_sku(merchant), make_sku(merchant)
    assert [s["id"] for s in api.get("/api/v1/skus", {"product": a.product_id}).json()["results"]] == [a.pk]


# --- token lifecycle -------------------------------------------------------------------------
def createmerchant(*args: str) -> dict:
    out = io.StringIO()
    call_command("createmerchant", *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_createmerchant_prints_one_json_line_with_a_working_token(db):  # type: ignore[no-untyped-def]
    printed = createmerchant("tea-house", "--name", "Tea House")
    assert set(printed) == {"merchant", "token"}
    assert printed["merchant"] == "tea-house"
    merchant = Merchant.objects.get(slug="tea-house")
    assert merchant.name == "Tea House"
    token = ApiToken.objects.get(merchant=merchant)
    assert token.key_hash == hashlib.sha256(printed["token"].encode()).hexdigest()
    assert printed["token"] not in str(list(ApiToken.objects.values()))
    assert token.last_used_at is None
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {printed['token']}")
    r = api.post("/api/v1/products", {"name": "Oolong"}, format="json")
    assert r.status_code == 201
    assert Product.objects.get(pk=r.json()["id"]).merchant == merchant
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


def test_createmerchant_with_staff_makes_an_admin_login_for_that_merchant_only(db, other_merchant):  # type: ignore[no-untyped-def]
    createmerchant("tea-house", "--name", "Tea House", "--staff", "mei", "--password", "a-long-password-1")
    make_sku(other_merchant)
    client = Client()
    # The real login form: the login throttle (django-axes) needs the request to key on.
    r = client.post("/admin/login/?next=/admin/", {"username": "mei", "password": "a-long-password-1"})
    assert r.status_code == 302
    assert client.get("/admin/").status_code == 200
    r = client.get("/admin/catalog/sku/")
    assert r.status_code == 200
    assert list(r.context["cl"].queryset) == []


def test_createmerchant_refuses_duplicates_and_staff_without_password(db):  # type: ignore[no-untyped-def]
    createmerchant("tea-house", "--name", "Tea House")
    with pytest.raises(CommandError):
        createmerchant("tea-house", "--name", "Again")
    with pytest.raises(CommandError):
        createmerchant("other", "--name", "Other", "--staff", "mei")
    assert Merchant.objects.count() == 1
    assert ApiToken.objects.count() == 1


def test_revoked_token_gets_401_and_other_tokens_keep_working(db, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    printed = createmerchant("tea-house", "--name", "Tea House")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {printed['token']}")
    assert api.get("/api/v1/products").status_code == 200
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Token {make_token(Merchant.objects.get(slug='tea-house'), 'second')}")
    with django_capture_on_commit_callbacks(execute=True):
        api_token_revoke(token=ApiToken.objects.get(name="default"))
    error(api.get("/api/v1/products"), 401, "authentication_failed")
    assert second.get("/api/v1/products").status_code == 200
