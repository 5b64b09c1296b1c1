"""The catalog back office in a real browser at 1366×768 (issue 10): every catalog list and form
fits the width with no horizontal scrolling, and products show their pictures and variants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.catalog import services as catalog
from apps.merchants import services as merchants

from ..factories import image_upload
from .conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 768}


def loaded(page, img) -> None:  # type: ignore[no-untyped-def]
    """Wait (up to 10 s) until the picture has loaded with real pixels: visible is not loaded yet."""
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(), timeout=10_000)


def a_catalog(merchant):  # type: ignore[no-untyped-def]
    """A show with long names, a product with pictures and colour/size variants, and listings."""
    show = catalog.session_create(
        merchant=merchant,
        title="双十二预热直播 · 年货节 · 云南高山普洱茶与手工羊绒围巾专场",
        streamer="小雅 Xiaoya",
        platforms=["storefront", "douyin", "kuaishou", "taobao"],
        scheduled_at=None,
    )
    product = catalog.product_create(
        merchant=merchant, name="手工羊绒围巾 内蒙古阿拉善白山羊绒 双面提花 礼盒装", description="Hand-made scarf"
    )
    catalog.product_image_add(product=product, image=image_upload("scarf.png", color="#8e44ad"), alt="围巾")
    skus = []
    for i, (color, size, hex_) in enumerate([("烟灰色", "180×30 cm", "#7f8c8d"), ("酒红色", "200×70 cm", "#922b21")]):
        sku = catalog.sku_create(
            merchant=merchant,
            product=product,
            code=f"SCARF-CASHMERE-DOUBLE-{i}",
            name="2026 冬季新款 双面提花",
            price=Decimal("1399.00"),
            on_hand=1200,
            color=color,
            size=size,
            image=image_upload(f"{i}.png", color=hex_) if i else None,
        )
        listing = catalog.listing_create(
            merchant=merchant, session=show, sku=sku, price=Decimal("999.00"), quota=500, per_buyer_limit=2
        )
        catalog.listing_open(listing=listing)
        skus.append(sku)
    return show, product, skus


def fits(page) -> None:  # type: ignore[no-untyped-def]
    width = page.evaluate("document.scrollingElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"{page.url}: {width}px wide in a {inner}px window"


@pytest.mark.parametrize("lang", ["zh-CN", "en-US"])
def test_catalog_pages_fit_a_laptop_and_show_pictures(new_page, merchant, lang):  # type: ignore[no-untyped-def]
    show, product, skus = a_catalog(merchant)
    listing = show.listings.order_by("pk").first()
    merchants.staff_create(merchant=merchant, username="alice", password="pw-123456789")
    page = new_page(locale=lang, viewport=LAPTOP)
    page.goto("/admin/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    tag = "zh" if lang == "zh-CN" else "en"

    for name, path in [
        ("products", "/admin/catalog/product/"),
        ("product", f"/admin/catalog/product/{product.pk}/change/"),
        ("skus", "/admin/catalog/sku/"),
        ("sku", f"/admin/catalog/sku/{skus[1].pk}/change/"),
        ("shows", "/admin/catalog/livesession/"),
        ("show", f"/admin/catalog/livesession/{show.pk}/change/"),
        ("listings", "/admin/catalog/listing/"),
        ("listing", f"/admin/catalog/listing/{listing.pk}/change/"),
        ("product-add", "/admin/catalog/product/add/"),
        ("sku-add", "/admin/catalog/sku/add/"),
        ("show-add", "/admin/catalog/livesession/add/"),
        ("listing-add", "/admin/catalog/listing/add/"),
    ]:
        response = page.goto(path)
        assert response is not None and response.ok, path
        fits(page)
        if name in ("products", "product", "skus", "sku", "show", "listing"):
            shot(page, f"catalog-{name}-1366-{tag}")

    page.goto("/admin/catalog/product/")
    thumb = page.locator("img.lc-thumb").first
    expect(thumb).to_be_visible()
    loaded(page, thumb)  # the file was served
    page.goto(f"/admin/catalog/sku/{skus[1].pk}/change/")
    expect(page.locator("#id_color")).to_have_value("酒红色")
    loaded(page, page.locator(".field-preview img"))
    page.goto(f"/admin/catalog/livesession/{show.pk}/change/")
    expect(page.locator('input[name="platforms"]:checked')).to_have_count(4)
    page.goto(f"/admin/catalog/listing/{listing.pk}/change/")
    expect(page.locator("#id_payment_window_minutes")).to_have_value("15")
    assert page.errors == []


@pytest.mark.parametrize("lang", ["zh-CN", "en-US"])
def test_product_page_with_picture_and_variants_on_a_phone(new_page, merchant, lang):  # type: ignore[no-untyped-def]
    _, product, _ = a_catalog(merchant)
    merchants.staff_create(merchant=merchant, username="alice", password="pw-123456789")
    page = new_page(locale=lang, viewport={"width": 390, "height": 844}, mobile=True)
    page.goto("/admin/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-123456789")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto(f"/admin/catalog/product/{product.pk}/change/")
    picture = page.locator(".inline-group img.lc-thumb").first
    picture.scroll_into_view_if_needed()
    expect(picture).to_be_visible()
    loaded(page, picture)
    expect(page.locator("body")).to_contain_text("烟灰色")
    expect(page.locator("body")).to_contain_text("酒红色")
    shot(page, f"catalog-product-390-{'zh' if lang == 'zh-CN' else 'en'}")
    assert page.errors == []
