"""Catalog admin saves go through the catalog services: a refused save shows an error (never a
500) and changes nothing; read-only records do not offer to save."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.catalog.services import listing_close, session_end
from apps.inventory.models import Stock
from apps.merchants.services import staff_create

from ..factories import make_listing, make_sku

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(merchant) -> Client:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=True, headers={"Accept-Language": "en"})  # the messages asserted
    client.force_login(staff_create(merchant=merchant, username="staff-acme", password="pw-long-enough-1"))
    return client


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def add_url(model: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def refused(response: Any) -> list[str]:
    """The errors shown: form errors on a re-rendered page, or error messages."""
    shown = [m.message for m in get_messages(response.wsgi_request) if m.level_tag == "error"]
    ctx = response.context
    if ctx is not None and "adminform" in ctx:
        form = ctx["adminform"].form
        shown += [str(e) for errs in form.errors.values() for e in errs]
    return shown


def sku_post(sku: SKU, **over: Any) -> dict[str, Any]:
    data = {
        "product": sku.product_id,
        "code": sku.code,
        "name": sku.name,
        "price": str(sku.price),
        "on_hand": Stock.objects.get(sku=sku).on_hand,
    }
    return {**data, **over}


def snapshot_sku(sku: SKU) -> tuple:
    sku = SKU.objects.get(pk=sku.pk)
    stock = Stock.objects.get(sku=sku)
    return (sku.code, sku.name, sku.price, stock.on_hand, stock.reserved)


def test_admin_duplicate_sku_code_shows_an_error_and_changes_nothing(staff, merchant):
    make_sku(merchant, code="TAKEN")
    sku = make_sku(merchant, code="MINE")
    before = snapshot_sku(sku)
    r = staff.post(change_url(sku), sku_post(sku, code="TAKEN"))
    assert r.status_code == 200
    assert any("already exists" in e for e in refused(r))
    assert snapshot_sku(sku) == before


@pytest.mark.parametrize("price", ["0", "-1.00"])
def test_admin_non_positive_sku_price_shows_an_error_and_changes_nothing(staff, merchant, price):
    sku = make_sku(merchant, code="MINE")
    before = snapshot_sku(sku)
    r = staff.post(change_url(sku), sku_post(sku, price=price))
    assert r.status_code == 200 and refused(r)
    assert snapshot_sku(sku) == before


def test_admin_new_sku_with_a_duplicate_code_shows_an_error_and_creates_nothing(staff, merchant):
    taken = make_sku(merchant, code="TAKEN")
    n = SKU.objects.count()
    r = staff.post(add_url(SKU), sku_post(taken, on_hand=5))
    assert r.status_code == 200
    assert any("already exists" in e for e in refused(r))
    assert SKU.objects.count() == n


def test_admin_on_hand_change_is_a_stock_movement(staff, merchant):
    sku = make_sku(merchant, code="MINE", on_hand=10)
    r = staff.post(change_url(sku), sku_post(sku, on_hand=25, name="renamed"))
    assert r.status_code == 302 and not refused(r)
    assert snapshot_sku(sku)[1] == "renamed" and Stock.objects.get(sku=sku).on_hand == 25
    assert sku.movements.filter(reason="set on hand in admin").exists()


def test_admin_on_hand_below_reserved_shows_an_error_and_changes_nothing(staff, merchant, api):
    from ..factories import order_body

    listing = make_listing(merchant, quota=5, limit=5)
    assert api.post("/api/v1/orders", order_body(listing.pk, quantity=3), format="json").status_code == 201
    sku = listing.sku
    before = snapshot_sku(sku)
    assert before[4] == 3
    r = staff.post(change_url(sku), sku_post(sku, on_hand=1, name="renamed"), follow=True)
    assert r.status_code == 200 and refused(r)
    assert snapshot_sku(sku) == before


def listing_post(listing: Listing, **over: Any) -> dict[str, Any]:
    data = {
        "price": str(listing.price),
        "quota": listing.quota,
        "per_buyer_limit": listing.per_buyer_limit,
        "payment_window_minutes": str(listing.payment_window_seconds / 60),
        "opens_at_0": "",
        "opens_at_1": "",
        "closes_at_0": "",
        "closes_at_1": "",
        # the platforms app's channel allocations inline on the listing page (none sent)
        "channel_allocations-TOTAL_FORMS": "0",
        "channel_allocations-INITIAL_FORMS": "0",
    }
    return {**data, **over}


def snapshot_listing(listing: Listing) -> tuple:
    x = Listing.objects.get(pk=listing.pk)
    return (x.price, x.quota, x.per_buyer_limit, x.status, x.version, x.opens_at, x.closes_at)


def test_admin_listing_quota_beyond_supply_shows_an_error_and_changes_nothing(staff, merchant):
    listing = make_listing(merchant, quota=5, on_hand=8, open_=False)
    before = snapshot_listing(listing)
    r = staff.post(change_url(listing), listing_post(listing, quota=50))
    assert r.status_code == 200
    assert any("exceeds" in e for e in refused(r))
    assert snapshot_listing(listing) == before


def test_admin_new_listing_quota_beyond_supply_shows_an_error_and_creates_nothing(staff, merchant):
    listing = make_listing(merchant, quota=5, on_hand=8, open_=False)
    n = Listing.objects.count()
    data = listing_post(listing, quota=50)
    r = staff.post(add_url(Listing), {**data, "session": listing.session_id, "sku": listing.sku_id})
    assert r.status_code == 200 and any("exceeds" in e for e in refused(r))
    assert Listing.objects.count() == n


def test_admin_closed_listing_is_read_only(staff, merchant):
    listing = listing_close(listing=make_listing(merchant, quota=5))
    before = snapshot_listing(listing)
    page = staff.get(change_url(listing))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    r = staff.post(change_url(listing), listing_post(listing, price="1.00"))
    assert r.status_code == 403
    assert snapshot_listing(listing) == before


def test_admin_ended_show_is_read_only(staff, merchant):
    listing = make_listing(merchant, quota=5)
    show = session_end(session=listing.session)
    page = staff.get(change_url(show))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    r = staff.post(change_url(show), {"title": "renamed", "streamer": "x", "platforms": '["storefront"]'})
    assert r.status_code == 403
    assert LiveSession.objects.get(pk=show.pk).title == show.title


EMPTY_IMAGES = {  # the pictures inline of the product page, posted with no row
    "images-TOTAL_FORMS": "0",
    "images-INITIAL_FORMS": "0",
    "images-MIN_NUM_FORMS": "0",
    "images-MAX_NUM_FORMS": "1000",
}


def test_admin_product_page_does_not_edit_skus_around_the_service(staff, merchant):
    sku = make_sku(merchant, code="MINE")
    page = staff.get(change_url(sku.product))
    assert page.status_code == 200
    assert b'name="skus-0-price"' not in page.content and b'name="skus-0-code"' not in page.content
    product = Product.objects.get(pk=sku.product_id)
    r = staff.post(
        change_url(product),
        {
            "name": "renamed",
            "description": "",
            "is_active": "on",
            "skus-TOTAL_FORMS": "1",
            "skus-INITIAL_FORMS": "1",
            "skus-MIN_NUM_FORMS": "0",
            "skus-MAX_NUM_FORMS": "1000",
            "skus-0-id": sku.pk,
            "skus-0-product": product.pk,
            "skus-0-code": "HACKED",
            "skus-0-price": "0",
            **EMPTY_IMAGES,
        },
    )
    assert r.status_code == 302, refused(r)
    assert Product.objects.get(pk=product.pk).name == "renamed"
    assert SKU.objects.get(pk=sku.pk).code == "MINE" and SKU.objects.get(pk=sku.pk).price == Decimal(sku.price)
