from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection

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


ON_POSTGRES = "postgresql" in settings.DATABASES["default"]["ENGINE"]

if ON_POSTGRES:

    def test_setting_on_hand_takes_the_difference_under_the_lock(merchant, monkeypatch):
        """ "Set on hand to 100" used to read the count unlocked and then add the difference under
        the lock: a change committed in between (here +5 by another connection, the moment
        before the lock) was undone or doubled. Now the difference is taken from the locked row."""
        from apps.catalog import services as catalog
        from apps.inventory import locks, services

        listing = make_listing(merchant, quota=5, on_hand=80)
        sku = listing.sku
        real_lock = locks.stock_change_lock
        raced = []

        def deliver() -> None:
            try:
                services.stock_adjust(sku=sku, delta=5, reason="delivery")
            finally:
                connection.close()

        def someone_else_first(sku_id):  # type: ignore[no-untyped-def]
            if not raced:
                raced.append(1)
                t = threading.Thread(
                    target=lambda: (services.stock_adjust(sku=sku, delta=5, reason="delivery"), connection.close())
                )
                t.start()
                t.join(timeout=30)
            return real_lock(sku_id)

        monkeypatch.setattr(services, "stock_change_lock", someone_else_first)
        catalog.sku_update(sku=sku, data={"on_hand": 100})
        assert Stock.objects.get(sku=sku).on_hand == 100
        assert stock_recompute(sku_id=sku.pk) == (100, 0)
