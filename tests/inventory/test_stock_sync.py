"""``POST /api/v1/stock/sync``: stock from the merchant's ERP/WMS (issue 10). Many SKUs by code,
absolute counts or deltas, once per sync id, never below what live orders hold (a conflict per
SKU, never a clamp), the gate and ``stock_changed`` following at once."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from rest_framework.test import APIClient

from apps.catalog.models import MAX_UNITS, Listing
from apps.inventory.hooks import stock_changed
from apps.inventory.models import Stock, StockMovement, StockSync
from apps.inventory.services import stock_recompute
from apps.inventory.sync import MAX_ITEMS, SyncItem, SyncRequest, stock_sync
from apps.orders.placement.gate import scripts as gate

from ..factories import make_listing, make_sku, make_token, order_body
from ..orders.invariants import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/stock/sync"
ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]


def _sync(api: APIClient, sync_id: str, items: list[dict[str, Any]], **extra: Any) -> Any:
    return api.post(URL, {"sync_id": sync_id, "items": items, **extra}, format="json")


def _on_hand(sku_id: int) -> int:
    return Stock.objects.get(sku_id=sku_id).on_hand


def _by_sku(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["sku"]: r for r in body["results"]}


@pytest.fixture
def changed() -> Any:
    """Every ``stock_changed`` sent, with whether a transaction was still open when it was."""
    seen: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        seen.append({**kwargs, "in_transaction": connection.in_atomic_block})

    stock_changed.connect(receiver, weak=False)
    try:
        yield seen
    finally:
        stock_changed.disconnect(receiver)


def test_absolute_counts_and_deltas_apply_with_their_movements(api, merchant):
    a, b, c = (make_sku(merchant, on_hand=n, code=code) for n, code in ((10, "A"), (5, "B"), (7, "C")))
    r = _sync(api, "erp-1", [{"sku": "A", "on_hand": 25}, {"sku": "B", "delta": -2}, {"sku": "C", "on_hand": 7}])
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["sync_id"] == "erp-1"
    assert body["summary"] == {"applied": 2, "unchanged": 1, "conflict": 0, "error": 0}
    assert [x["sku"] for x in body["results"]] == ["A", "B", "C"]  # the request's order
    res = _by_sku(body)
    assert res["A"] == {
        "sku": "A",
        "status": "applied",
        "on_hand": 25,
        "reserved": 0,
        "available": 25,
        "previous_on_hand": 10,
        "requested_on_hand": 25,
        "code": None,
        "message": None,
    }
    assert res["B"]["status"] == "applied" and res["B"]["on_hand"] == 3 and res["B"]["previous_on_hand"] == 5
    assert res["C"]["status"] == "unchanged" and res["C"]["on_hand"] == 7
    assert (_on_hand(a.pk), _on_hand(b.pk), _on_hand(c.pk)) == (25, 3, 7)
    moves = list(
        StockMovement.objects.filter(reference="erp-1").order_by("id").values_list("sku_id", "kind", "on_hand_delta")
    )
    assert moves == [(a.pk, "receive", 15), (b.pk, "adjust", -2)]  # nothing written for C
    for sku in (a, b, c):
        assert stock_recompute(sku_id=sku.pk) == (_on_hand(sku.pk), 0)
    assert json.loads(StockSync.objects.get(merchant=merchant, sync_id="erp-1").response) == body


def test_a_count_below_what_live_orders_hold_is_a_conflict_for_that_sku_only(api, merchant):
    listing = make_listing(merchant, quota=5, on_hand=5, limit=3)
    held = listing.sku
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=3), format="json").status_code == 201
    other = make_sku(merchant, on_hand=4, code="OTHER")
    third = make_sku(merchant, on_hand=9, code="THIRD")
    r = _sync(
        api,
        "erp-2",
        [{"sku": held.code, "on_hand": 2}, {"sku": "OTHER", "on_hand": 40}, {"sku": "THIRD", "delta": -7}],
    )
    assert r.status_code == 200
    res = _by_sku(r.json())
    assert res[held.code] == {
        "sku": held.code,
        "status": "conflict",
        "on_hand": 5,
        "reserved": 3,
        "available": 2,
        "previous_on_hand": 5,
        "requested_on_hand": 2,
        "code": "insufficient_stock",
        "message": "on hand cannot go below the 3 units live orders hold",
    }
    assert res["OTHER"]["status"] == "applied" and res["THIRD"]["status"] == "applied"
    assert r.json()["summary"] == {"applied": 2, "unchanged": 0, "conflict": 1, "error": 0}
    assert _on_hand(held.pk) == 5, "a conflict is not clamped: the SKU is left as it was"
    assert (_on_hand(other.pk), _on_hand(third.pk)) == (40, 2)
    assert not StockMovement.objects.filter(sku=held, reference="erp-2").exists()
    # A delta that would cut into the held units is a conflict too; exactly down to them applies.
    r = _sync(api, "erp-3", [{"sku": held.code, "delta": -3}])
    assert _by_sku(r.json())[held.code]["status"] == "conflict" and _on_hand(held.pk) == 5
    r = _sync(api, "erp-4", [{"sku": held.code, "on_hand": 3}])
    assert _by_sku(r.json())[held.code]["status"] == "applied" and _on_hand(held.pk) == 3
    assert_consistent(listing.pk)


def test_the_gate_follows_a_sync_at_once(api, merchant):
    listing = make_listing(merchant, quota=10, on_hand=10, limit=5)
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=2), format="json").status_code == 201
    assert gate.gate_state(listing.pk)["left"] == 8
    r = _sync(api, "wms-shrink", [{"sku": listing.sku.code, "on_hand": 6}])
    assert _by_sku(r.json())[listing.sku.code]["status"] == "applied"
    listing.refresh_from_db()
    assert (listing.quota, listing.sold) == (6, 2), "the unsold quota is cut to the 4 units left"
    assert gate.gate_state(listing.pk)["left"] == 4, "the gate follows the cut after commit"
    assert api.post("/api/v1/orders", order_body(listing.pk, buyer="b2", quantity=4), format="json").status_code == 201
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="b3"), format="json")
    assert r.status_code == 409 and r.json()["code"] == "sold_out"
    assert_consistent(listing.pk, expect_sold=6)


def test_a_newly_stocked_sku_can_go_on_air_at_once(api, merchant):
    """Stock the ERP delivers is sellable straight away: a listing for it can take the new units
    and buyers get them (before the sync its SKU could supply none)."""
    sku = make_sku(merchant, on_hand=0, code="NEW-1")
    from ..factories import make_session

    session = make_session(merchant)
    body = {"session": session.pk, "sku": sku.pk, "price": "9.90", "quota": 3, "per_buyer_limit": 3}
    r = api.post("/api/v1/listings", body, format="json")
    assert r.status_code == 400 and r.json()["code"] == "quota_exceeds_supply"
    assert _by_sku(_sync(api, "po-77", [{"sku": "NEW-1", "delta": 3}]).json())["NEW-1"]["status"] == "applied"
    r = api.post("/api/v1/listings", body, format="json")
    assert r.status_code == 201, r.json()
    listing_id = r.json()["id"]
    assert api.post(f"/api/v1/listings/{listing_id}/open", {}, format="json").status_code == 200
    assert api.post("/api/v1/orders", order_body(listing_id, quantity=3), format="json").status_code == 201
    assert Stock.objects.get(sku=sku).reserved == 3
    assert_consistent(listing_id, expect_sold=3)


def test_a_replay_answers_the_same_and_applies_once(api, merchant):
    sku = make_sku(merchant, on_hand=10, code="A")
    items = [{"sku": "A", "delta": 5}, {"sku": "NOPE", "on_hand": 1}]
    first = _sync(api, "erp-r", items, reason="PO 881")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first
    again = _sync(api, "erp-r", items, reason="PO 881")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert _on_hand(sku.pk) == 15
    assert StockMovement.objects.filter(reference="erp-r").count() == 1
    assert StockMovement.objects.get(reference="erp-r").reason == "PO 881"
    # A mode guard that the items satisfy does not make it another sync.
    assert _sync(api, "erp-r", items, reason="PO 881", mode="absolute").status_code == 400  # a delta item
    sku_only = [{"sku": "A", "delta": 5}]
    assert _sync(api, "erp-r2", sku_only).status_code == 200
    assert _sync(api, "erp-r2", sku_only, mode="delta")["Idempotent-Replayed"] == "true"
    assert _on_hand(sku.pk) == 20


@pytest.mark.parametrize(
    "second",
    [
        {"items": [{"sku": "A", "delta": 6}]},
        {"items": [{"sku": "A", "on_hand": 5}]},
        {"items": [{"sku": "A", "delta": 5}], "reason": "another reason"},
        {"items": [{"sku": "A", "delta": 5}, {"sku": "B", "delta": 1}]},
    ],
)
def test_the_same_sync_id_with_another_body_is_422(api, merchant, second):
    sku = make_sku(merchant, on_hand=10, code="A")
    make_sku(merchant, on_hand=10, code="B")
    assert _sync(api, "erp-x", [{"sku": "A", "delta": 5}]).status_code == 200
    r = api.post(URL, {"sync_id": "erp-x", **second}, format="json")
    assert r.status_code == 422
    assert r.json() == {
        "code": "idempotency_key_reused",
        "message": "this sync_id was used with a different request body",
        "extra": {"sync_id": "erp-x"},
    }
    assert _on_hand(sku.pk) == 15 and StockSync.objects.count() == 1


def test_unknown_codes_are_errors_and_the_rest_applies(api, merchant):
    sku = make_sku(merchant, on_hand=1, code="KNOWN")
    r = _sync(
        api, "erp-u", [{"sku": "MISSING", "on_hand": 5}, {"sku": "KNOWN", "on_hand": 8}, {"sku": "known", "delta": 1}]
    )
    assert r.status_code == 200
    res = _by_sku(r.json())
    for code in ("MISSING", "known"):  # codes match exactly
        assert res[code] == {
            "sku": code,
            "status": "error",
            "on_hand": None,
            "reserved": None,
            "available": None,
            "previous_on_hand": None,
            "requested_on_hand": None,
            "code": "unknown_sku",
            "message": "no SKU with this code",
        }
    assert res["KNOWN"]["status"] == "applied" and _on_hand(sku.pk) == 8


def test_a_delta_past_either_bound_is_an_error_for_that_sku(api, merchant):
    low = make_sku(merchant, on_hand=5, code="LOW")
    high = make_sku(merchant, on_hand=MAX_UNITS - 1, code="HIGH")
    ok = make_sku(merchant, on_hand=1, code="OK")
    r = _sync(api, "erp-b", [{"sku": "LOW", "delta": -6}, {"sku": "HIGH", "delta": 2}, {"sku": "OK", "delta": 1}])
    res = _by_sku(r.json())
    assert res["LOW"]["status"] == "error" and res["LOW"]["code"] == "stock_limit"
    assert res["LOW"]["requested_on_hand"] == -1 and res["LOW"]["on_hand"] == 5
    assert res["HIGH"]["status"] == "error" and res["HIGH"]["code"] == "stock_limit"
    assert (_on_hand(low.pk), _on_hand(high.pk), _on_hand(ok.pk)) == (5, MAX_UNITS - 1, 2)


def _item(i: int) -> dict[str, Any]:
    return {"sku": "A", "on_hand": i}


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("not an object", [{"sku": "A", "on_hand": 1}], "non_field_errors"),
    ("no sync_id", {"items": [{"sku": "A", "on_hand": 1}]}, "sync_id"),
    ("null sync_id", {"sync_id": None, "items": [{"sku": "A", "on_hand": 1}]}, "sync_id"),
    ("sync_id with a space", {"sync_id": "erp 1", "items": [{"sku": "A", "on_hand": 1}]}, "sync_id"),
    ("sync_id too long", {"sync_id": "x" * 101, "items": [{"sku": "A", "on_hand": 1}]}, "sync_id"),
    ("sync_id not ASCII", {"sync_id": "同步-1", "items": [{"sku": "A", "on_hand": 1}]}, "sync_id"),
    ("sync_id a number", {"sync_id": 42, "items": [{"sku": "A", "on_hand": 1}]}, "sync_id"),
    ("no items", {"sync_id": "s"}, "items"),
    ("empty items", {"sync_id": "s", "items": []}, "items"),
    (
        "too many items",
        {"sync_id": "s", "items": [{"sku": f"S{i}", "on_hand": 1} for i in range(MAX_ITEMS + 1)]},
        "items",
    ),
    ("items an object", {"sync_id": "s", "items": {"sku": "A", "on_hand": 1}}, "items"),
    ("an item not an object", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, "B"]}, "items"),
    ("an item without sku", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"on_hand": 1}]}, "items"),
    ("negative count", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": -1}]}, "items"),
    ("count past the bound", {"sync_id": "s", "items": [{"sku": "A", "on_hand": MAX_UNITS + 1}]}, "items"),
    ("delta past the bound", {"sync_id": "s", "items": [{"sku": "A", "delta": -MAX_UNITS - 1}]}, "items"),
    (
        "count as a string",
        {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": "5"}]},
        "items",
    ),
    (
        "count a fraction",
        {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": 5.5}]},
        "items",
    ),
    ("count a float", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": 5.0}]}, "items"),
    (
        "count a boolean",
        {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": True}]},
        "items",
    ),
    ("delta null", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "delta": None}]}, "items"),
    ("both count and delta", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1, "delta": 1}]}, "items"),
    ("neither count nor delta", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "B"}]}, "items"),
    ("a misspelt item field", {"sync_id": "s", "items": [{"sku": "A", "onhand": 1}]}, "items"),
    ("an unknown top field", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}], "dry_run": True}, "dry_run"),
    ("the same SKU twice", {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "A", "delta": 1}]}, "items"),
    ("mode absolute, a delta", {"sync_id": "s", "mode": "absolute", "items": [{"sku": "A", "delta": 1}]}, "items"),
    ("mode delta, a count", {"sync_id": "s", "mode": "delta", "items": [{"sku": "A", "on_hand": 1}]}, "items"),
    ("unknown mode", {"sync_id": "s", "mode": "replace", "items": [{"sku": "A", "on_hand": 1}]}, "mode"),
    ("sku too long", {"sync_id": "s", "items": [{"sku": "A" * 65, "on_hand": 1}]}, "items"),
    ("reason too long", {"sync_id": "s", "reason": "r" * 201, "items": [{"sku": "A", "on_hand": 1}]}, "reason"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c for c, _, _ in BAD_BODIES])
def test_a_malformed_body_is_a_400_that_changes_nothing(api, merchant, case, body, field):
    a = make_sku(merchant, on_hand=10, code="A")
    b = make_sku(merchant, on_hand=10, code="B")
    r = api.post(URL, body, format="json")
    assert r.status_code == 400, (case, r.json())
    out = r.json()
    assert out["code"] == "invalid" and out["message"]
    assert field in out["extra"]["fields"], out
    assert (_on_hand(a.pk), _on_hand(b.pk)) == (10, 10), "a valid item in a bad body is not applied"
    assert StockSync.objects.count() == 0 and StockMovement.objects.filter(kind="adjust").count() == 0


def test_bad_items_are_named_by_index(api, merchant):
    make_sku(merchant, on_hand=10, code="A")
    body = {
        "sync_id": "s",
        "items": [{"sku": "A", "on_hand": 1}, {"sku": "B", "on_hand": -1}, {"sku": "C"}, {"sku": "A", "delta": 2}],
    }
    r = api.post(URL, body, format="json")
    items = r.json()["extra"]["fields"]["items"]
    assert set(items) == {"1", "2"} and "on_hand" in items["1"] and "non_field_errors" in items["2"]
    # The duplicate is reported once the items themselves are well formed.
    r = api.post(URL, {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}, {"sku": "A", "delta": 2}]}, format="json")
    assert r.json()["extra"]["fields"]["items"] == {"1": {"sku": ["Same SKU as item 0."]}}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        (b'{"sync_id": "s", "items": [', "application/json", 400, "malformed_request"),
        (b'{"sync_id": "s", "items": [{"sku": "A", "on_hand": NaN}]}', "application/json", 400, "malformed_request"),
        (b"sync_id=s", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_a_body_that_is_not_json_is_refused(api, merchant, raw, content_type, status, code):
    sku = make_sku(merchant, on_hand=10, code="A")
    r = api.generic("POST", URL, raw, content_type=content_type)
    assert r.status_code == status and r.json()["code"] == code
    assert _on_hand(sku.pk) == 10 and StockSync.objects.count() == 0


def test_no_token_no_sync(anon, merchant):
    sku = make_sku(merchant, on_hand=10, code="A")
    r = anon.post(URL, {"sync_id": "s", "items": [{"sku": "A", "on_hand": 1}]}, format="json")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
    assert _on_hand(sku.pk) == 10


def test_codes_resolve_within_the_tokens_merchant_only(api, other_api, merchant, other_merchant):
    mine = make_sku(merchant, on_hand=10, code="SHARED")
    theirs = make_sku(other_merchant, on_hand=10, code="SHARED")
    only_theirs = make_sku(other_merchant, on_hand=10, code="THEIRS")
    r = _sync(api, "same-id", [{"sku": "SHARED", "on_hand": 3}, {"sku": "THEIRS", "on_hand": 0}])
    res = _by_sku(r.json())
    assert res["SHARED"]["status"] == "applied" and res["THEIRS"]["code"] == "unknown_sku"
    assert res["THEIRS"]["on_hand"] is None, "nothing of another merchant's SKU is shown"
    assert (_on_hand(mine.pk), _on_hand(theirs.pk), _on_hand(only_theirs.pk)) == (3, 10, 10)
    # Sync ids are per merchant: the other merchant's "same-id" is its own sync, not a replay.
    r = _sync(other_api, "same-id", [{"sku": "SHARED", "on_hand": 7}])
    assert r.status_code == 200 and "Idempotent-Replayed" not in r
    assert _by_sku(r.json())["SHARED"]["status"] == "applied"
    assert (_on_hand(mine.pk), _on_hand(theirs.pk)) == (3, 7)
    assert StockMovement.objects.filter(reference="same-id", merchant=other_merchant).count() == 1


def test_stock_changed_follows_each_changed_sku_after_commit(api, merchant, changed):
    listing = make_listing(merchant, quota=3, on_hand=3, limit=2)
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=2), format="json").status_code == 201
    make_sku(merchant, on_hand=4, code="UP")
    make_sku(merchant, on_hand=4, code="DOWN")
    make_sku(merchant, on_hand=4, code="SAME")
    items = [
        {"sku": "UP", "delta": 6},
        {"sku": "DOWN", "on_hand": 1},
        {"sku": "SAME", "on_hand": 4},
        {"sku": listing.sku.code, "on_hand": 1},  # below the 2 held: conflict
        {"sku": "GHOST", "on_hand": 1},
    ]
    r = _sync(api, "erp-s", items)
    assert r.json()["summary"] == {"applied": 2, "unchanged": 1, "conflict": 1, "error": 1}
    assert [(c["sku_code"], c["on_hand"], c["source"], c["reference"]) for c in changed] == [
        ("UP", 10, "sync", "erp-s"),
        ("DOWN", 1, "sync", "erp-s"),
    ]
    assert not any(c["in_transaction"] for c in changed), "sent only after commit"
    assert all(c["merchant_id"] == merchant.pk and c["reserved"] == 0 for c in changed)
    _sync(api, "erp-s", items)
    assert len(changed) == 2, "a replay announces nothing"
    # The single-SKU correction announces its change the same way.
    sku_id = listing.sku_id
    assert api.post(f"/api/v1/skus/{sku_id}/stock", {"delta": 4, "reason": "found"}, format="json").status_code == 200
    assert changed[-1]["sku_id"] == sku_id and changed[-1]["on_hand"] == 7 and changed[-1]["reserved"] == 2
    assert changed[-1]["source"] == "adjust" and not changed[-1]["in_transaction"]


def test_a_sync_that_rolls_back_announces_nothing(merchant, changed):
    sku = make_sku(merchant, on_hand=4, code="A")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        stock_sync(merchant_id=merchant.pk, request=SyncRequest(sync_id="t", items=(SyncItem("A", on_hand=9),)))
        raise Boom
    assert changed == [] and _on_hand(sku.pk) == 4 and not StockSync.objects.exists()


def test_a_failing_receiver_does_not_fail_the_sync(api, merchant):
    sku = make_sku(merchant, on_hand=4, code="A")

    def broken(**_: Any) -> None:
        raise RuntimeError("platform down")

    stock_changed.connect(broken, weak=False)
    try:
        r = _sync(api, "erp-f", [{"sku": "A", "on_hand": 9}])
    finally:
        stock_changed.disconnect(broken)
    assert r.status_code == 200 and _on_hand(sku.pk) == 9


def test_messages_follow_accept_language(api, merchant):
    make_sku(merchant, on_hand=4, code="A")
    r = api.post(
        URL, {"sync_id": "zh", "items": [{"sku": "NOPE", "on_hand": 1}]}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert r.json()["results"][0]["code"] == "unknown_sku"
    assert r.json()["results"][0]["message"] == "没有此编码的 SKU"


def test_the_schema_documents_the_sync(anon):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    op = schema["paths"]["/api/v1/stock/sync"]["post"]
    assert set(op["responses"]) >= {"200", "400", "401", "422"}
    body = op["requestBody"]["content"]["application/json"]
    assert body["examples"], "a realistic example body"
    ref = body["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][ref]["required"]) == {"sync_id", "items"}


def _client(token: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return c


def test_concurrent_duplicates_apply_once(merchant):
    """Eight requests with one sync id at the same moment (one connection each): one applies,
    the others wait for it and answer its response."""
    token = make_token(merchant)
    skus = [make_sku(merchant, on_hand=10, code=f"D{i}") for i in range(5)]
    items = [{"sku": s.code, "delta": 3} for s in skus]
    barrier = threading.Barrier(8)
    answers: list[tuple[int, bytes, bool]] = []

    def one() -> None:
        client = _client(token)
        try:
            barrier.wait(timeout=30)
            r = client.post(URL, {"sync_id": "dup", "items": items}, format="json")
            answers.append((r.status_code, r.content, r.get("Idempotent-Replayed") == "true"))
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 8 and {s for s, _, _ in answers} == {200}
    assert len({c for _, c, _ in answers}) == 1, "every answer is the one response"
    assert sorted(replayed for _, _, replayed in answers) == [False] + [True] * 7
    for s in skus:
        assert _on_hand(s.pk) == 13
        assert stock_recompute(sku_id=s.pk) == (13, 0)
    assert StockMovement.objects.filter(reference="dup").count() == 5 and StockSync.objects.count() == 1


def test_syncs_during_a_running_sale_never_oversell(merchant, token):
    """An ERP syncing counts (some cutting quotas, some below what orders hold) while 360 orders
    race for the listing: no 5xx, no deadlock, and every invariant holds at the end."""
    from ..orders.test_flash_sale_concurrency import _buyer_jobs, _storm, _summarise

    listing = make_listing(merchant, quota=150, on_hand=200, limit=2)
    code = listing.sku.code
    others = [make_sku(merchant, on_hand=50, code=f"O{i}") for i in range(20)]
    statuses: list[str] = []
    answers: list[int] = []
    stop = threading.Event()

    def erp() -> None:
        client = _client(token)
        try:
            i = 0
            while not stop.is_set() and i < 200:
                count = (130, 200, 110, 180)[i % 4]
                items = [{"sku": o.code, "delta": 1 if i % 2 else -1} for o in others[: 1 + i % 20]]
                items.insert(i % len(items), {"sku": code, "on_hand": count})
                r = client.post(URL, {"sync_id": f"sale-{i}", "items": items}, format="json")
                answers.append(r.status_code)
                if r.status_code == 200:
                    statuses.extend(x["status"] for x in r.json()["results"] if x["sku"] == code)
                i += 1
        finally:
            connection.close()

    worker = threading.Thread(target=erp)
    worker.start()
    try:
        results = _storm(token, _buyer_jobs(listing.pk, 360, buyers=200))
    finally:
        stop.set()
        worker.join(timeout=120)
    summary = _summarise(results)
    assert {s for s, _ in results} <= {201, 409}, summary
    assert answers and set(answers) == {200}, sorted(set(answers))
    assert set(statuses) <= {"applied", "unchanged", "conflict"} and "applied" in statuses
    sold = sum(b["lines"][0]["quantity"] for s, b in results if s == 201)
    listing = Listing.objects.get(pk=listing.pk)
    assert sold <= listing.quota
    stock = Stock.objects.get(sku_id=listing.sku_id)
    assert stock.reserved == sold <= stock.on_hand
    assert_consistent(listing.pk, expect_sold=sold)
    for o in others:
        assert stock_recompute(sku_id=o.pk) == (_on_hand(o.pk), 0)
