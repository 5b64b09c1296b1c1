from __future__ import annotations

import pytest

from apps.catalog.models import Listing
from apps.inventory.models import Stock, StockMovement
from apps.inventory.services import stock_recompute
from apps.orders.placement.gate import scripts as gate

from ..factories import make_listing, order_body

pytestmark = pytest.mark.django_db(transaction=True)


def test_stock_endpoint_receives_and_corrects_with_movements(api, merchant):
    listing = make_listing(merchant, quota=5, on_hand=5)
    sku = listing.sku
    r = api.post(f"/api/v1/skus/{sku.pk}/stock", {"delta": 10, "reason": "receive PO-1"}, format="json")
    assert r.status_code == 200 and r.json()["on_hand"] == 15
    r = api.post(f"/api/v1/skus/{sku.pk}/stock", {"delta": -3, "reason": "damaged"}, format="json")
    assert r.status_code == 200 and r.json()["on_hand"] == 12
    kinds = list(StockMovement.objects.filter(sku=sku).order_by("id").values_list("kind", "on_hand_delta"))
    assert kinds == [("receive", 5), ("receive", 10), ("adjust", -3)]
    stock = Stock.objects.get(sku=sku)
    assert stock_recompute(sku_id=sku.pk) == (stock.on_hand, stock.reserved)


def test_stock_cannot_go_below_reserved(api, merchant):
    listing = make_listing(merchant, quota=3, on_hand=3, limit=3)
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=2), format="json").status_code == 201
    r = api.post(f"/api/v1/skus/{listing.sku_id}/stock", {"delta": -2, "reason": "count"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "insufficient_stock"
    assert Stock.objects.get(sku_id=listing.sku_id).on_hand == 3


@pytest.mark.parametrize(
    "body",
    [
        {"delta": 0, "reason": "x"},
        {"delta": "a", "reason": "x"},
        {"delta": 5},
        {"delta": 10**12, "reason": "x"},
        {"delta": -1, "reason": "x", "kind": "receive"},
    ],
)
def test_bad_stock_changes_are_400(api, merchant, body):
    listing = make_listing(merchant, quota=3)
    r = api.post(f"/api/v1/skus/{listing.sku_id}/stock", body, format="json")
    assert r.status_code == 400 and r.json()["code"] in {"invalid", "invalid_stock_change"}


def test_the_gate_follows_a_stock_cut_at_once(api, merchant, django_capture_on_commit_callbacks):
    listing = make_listing(merchant, quota=10, on_hand=10, limit=5)
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=2), format="json").status_code == 201
    assert gate.gate_state(listing.pk)["left"] == 8
    r = api.post(f"/api/v1/skus/{listing.sku_id}/stock", {"delta": -6, "reason": "broken"}, format="json")
    assert r.status_code == 200
    listing.refresh_from_db()
    assert listing.quota == 4 and listing.sold == 2
    assert gate.gate_state(listing.pk)["left"] == 2
    assert api.post("/api/v1/orders", order_body(listing.pk, buyer="b2", quantity=2), format="json").status_code == 201
    r = api.post("/api/v1/orders", order_body(listing.pk, buyer="b3"), format="json")
    assert r.status_code == 409 and r.json()["code"] == "sold_out"
    assert Listing.objects.get(pk=listing.pk).sold == 4
