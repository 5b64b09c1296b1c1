"""The catalog back office (issue 10): product pictures uploaded through the admin and stored
through the storage API, SKU variants, the payment window in minutes, the show's platforms as
checkboxes, and the tenant wall around pictures."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from apps.catalog import services
from apps.catalog.images import MAX_IMAGE_BYTES
from apps.catalog.models import SKU, Listing, LiveSession, Product, ProductImage
from apps.inventory.models import Stock
from apps.merchants.services import staff_create

from ..factories import ProductFactory, image_upload, make_listing, make_session, make_sku, png_bytes
from .test_admin_services import EMPTY_IMAGES, add_url, change_url, refused

pytestmark = pytest.mark.django_db


def login(merchant, username: str) -> Client:  # type: ignore[no-untyped-def]
    client = Client(raise_request_exception=True, headers={"Accept-Language": "en"})
    client.force_login(staff_create(merchant=merchant, username=username, password="pw-long-enough-1"))
    return client


@pytest.fixture
def staff(merchant) -> Client:  # type: ignore[no-untyped-def]
    return login(merchant, "staff-acme")


def stored_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def product_post(product: Product, *, images: list[dict[str, Any]], initial: int = 0) -> dict[str, Any]:
    """The product page as a browser posts it (multipart), with rows of the pictures inline."""
    data: dict[str, Any] = {
        "name": product.name,
        "description": product.description,
        "is_active": "on",
        **EMPTY_IMAGES,
        "images-TOTAL_FORMS": str(len(images)),
        "images-INITIAL_FORMS": str(initial),
        "skus-TOTAL_FORMS": "0",
        "skus-INITIAL_FORMS": "0",
        "skus-MIN_NUM_FORMS": "0",
        "skus-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(images):
        data.update({f"images-{i}-{k}": v for k, v in row.items()})
    return data


def test_admin_upload_stores_the_picture_through_storage_and_shows_it(staff, merchant):
    product = ProductFactory(merchant=merchant, name="手工羊绒围巾")
    r = staff.post(
        change_url(product),
        product_post(product, images=[{"image": image_upload("scarf.png"), "alt": "grey scarf", "position": "0"}]),
    )
    assert r.status_code == 302, refused(r)
    picture = ProductImage.objects.get(product=product)
    assert picture.merchant_id == merchant.pk and picture.alt == "grey scarf"
    name = picture.image.name
    assert name.startswith(f"catalog/{merchant.pk}/products/") and name.endswith(".png")
    assert "scarf" not in name  # the stored name is ours, not the browser's
    assert default_storage.exists(name)
    with default_storage.open(name) as f:
        assert f.read() == png_bytes()

    page = staff.get(change_url(product)).content.decode()
    assert f'src="{picture.image.url}"' in page  # the inline's preview
    listing = staff.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert f'src="{picture.image.url}"' in listing and 'class="lc-thumb"' in listing
    served = staff.get(picture.image.url)  # ./run and the tests serve MEDIA_URL themselves
    assert served.status_code == 200 and b"".join(served.streaming_content) == png_bytes()


def test_admin_picture_file_is_named_by_its_content_not_its_name(staff, merchant):
    product = ProductFactory(merchant=merchant)
    jpeg = SimpleUploadedFile("photo.png", png_bytes(fmt="JPEG"), content_type="image/png")  # JPEG inside
    r = staff.post(change_url(product), product_post(product, images=[{"image": jpeg, "alt": "", "position": "0"}]))
    assert r.status_code == 302, refused(r)
    assert ProductImage.objects.get(product=product).image.name.endswith(".jpg")


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("notes.png", b"%PDF-1.4 not a picture", content_type="image/png"), "valid image"),
        (SimpleUploadedFile("huge.png", b"", content_type="image/png"), "at most 5 MB"),
        (SimpleUploadedFile("pic.bmp", png_bytes(fmt="BMP"), content_type="image/bmp"), "not accepted"),
    ],
    ids=["not-an-image", "over-5-MB", "bmp"],
)
def test_admin_refuses_a_bad_upload_with_a_message_and_stores_nothing(staff, merchant, upload, message):
    if upload.name == "huge.png":  # a real PNG padded past the limit (Pillow still reads it)
        upload = SimpleUploadedFile("huge.png", png_bytes() + b"\0" * MAX_IMAGE_BYTES, content_type="image/png")
    product = ProductFactory(merchant=merchant)
    before = stored_files()
    r = staff.post(change_url(product), product_post(product, images=[{"image": upload, "alt": "", "position": "0"}]))
    assert r.status_code == 200
    rows = r.context["inline_admin_formsets"][0].formset.forms
    errors = [str(e) for form in rows for e in form.errors.get("image", [])]
    assert any(message in e for e in errors), errors
    assert not ProductImage.objects.exists()
    assert stored_files() == before


def test_admin_picture_delete_removes_row_and_file(staff, merchant):
    product = ProductFactory(merchant=merchant)
    picture = services.product_image_add(product=product, image=image_upload())
    row = {"id": picture.pk, "product": product.pk, "alt": "", "position": "0", "DELETE": "on"}
    with_commit = staff.post(change_url(product), product_post(product, images=[row], initial=1))
    assert with_commit.status_code == 302, refused(with_commit)
    assert not ProductImage.objects.filter(pk=picture.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleted_picture_file_goes_after_commit(merchant):
    product = ProductFactory(merchant=merchant)
    picture = services.product_image_add(product=product, image=image_upload())
    name = picture.image.name
    assert default_storage.exists(name)
    services.product_image_delete(picture=picture)
    assert not default_storage.exists(name)


def test_sku_image_url_is_its_own_else_the_products_main_picture(merchant, django_assert_num_queries):
    sku = make_sku(merchant)
    assert sku.image_url == ""
    second = services.product_image_add(product=sku.product, image=image_upload(color="#00f"), position=5)
    first = services.product_image_add(product=sku.product, image=image_upload(color="#f00"), position=1)
    sku = SKU.objects.get(pk=sku.pk)
    assert sku.image_url == first.image.url != second.image.url
    services.sku_update(sku=sku, data={"image": image_upload("own.png", color="#0f0")})
    sku = SKU.objects.get(pk=sku.pk)
    assert sku.image_url == sku.image.url and sku.image.name.startswith(f"catalog/{merchant.pk}/skus/")
    others = [make_sku(merchant) for _ in range(3)]
    for other in others:
        services.product_image_add(product=other.product, image=image_upload())
    with django_assert_num_queries(2):  # SKUs with products, then their pictures: no query per SKU
        urls = [s.image_url for s in SKU.objects.select_related("product").prefetch_related("product__images")]
    assert all(urls)


def sku_form(sku: SKU | None, product: Product, **over: Any) -> dict[str, Any]:
    data = {
        "product": product.pk,
        "code": sku.code if sku else "NEW-1",
        "name": "",
        "color": "",
        "size": "",
        "price": "99.00",
        "on_hand": Stock.objects.get(sku=sku).on_hand if sku else 5,
    }
    return {**data, **over}


def test_admin_sku_variants_are_saved_shown_and_unique_per_product(staff, merchant):
    product = ProductFactory(merchant=merchant, name="T恤")
    r = staff.post(add_url(SKU), sku_form(None, product, code="TEE-R-XL", color=" 红色 ", size="XL"))
    assert r.status_code == 302, refused(r)
    red = SKU.objects.get(code="TEE-R-XL")
    assert (red.color, red.size, red.variant) == ("红色", "XL", "红色 / XL")

    n = SKU.objects.count()
    r = staff.post(add_url(SKU), sku_form(None, product, code="TEE-R-XL-2", color="红色", size="XL"))
    assert r.status_code == 200 and any("already 红色 / XL" in e for e in refused(r))
    assert SKU.objects.count() == n
    other = ProductFactory(merchant=merchant)  # the same variant of another product is fine
    r = staff.post(add_url(SKU), sku_form(None, other, code="OTHER-R-XL", color="红色", size="XL"))
    assert r.status_code == 302, refused(r)
    r = staff.post(add_url(SKU), sku_form(None, product, code="TEE-R-L", color="红色", size="L" * 41))
    assert r.status_code == 200 and refused(r)

    assert "红色 / XL" in staff.get(reverse("admin:catalog_sku_changelist")).content.decode()
    assert "红色 / XL" in staff.get(change_url(product)).content.decode()  # the product's SKU rows


def test_api_sku_shows_and_takes_variants_and_image_url(api, merchant):
    product = ProductFactory(merchant=merchant)
    body = {"product": product.pk, "code": "TEE-B-M", "price": "59.00", "on_hand": 3, "color": "蓝色", "size": "M"}
    r = api.post("/api/v1/skus", body, format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["color"], r.json()["size"], r.json()["image_url"]) == ("蓝色", "M", None)
    r = api.post("/api/v1/skus", {**body, "code": "TEE-B-M-2"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "duplicate_variant", r.content
    picture = services.product_image_add(product=product, image=image_upload())
    got = api.get(f"/api/v1/skus/{SKU.objects.get(code='TEE-B-M').pk}").json()
    assert got["image_url"] == f"http://testserver{picture.image.url}"


def listing_form(listing: Listing, **over: Any) -> dict[str, Any]:
    data = {
        "price": str(listing.price),
        "quota": listing.quota,
        "per_buyer_limit": listing.per_buyer_limit,
        "opens_at_0": "",
        "opens_at_1": "",
        "closes_at_0": "",
        "closes_at_1": "",
        # the platforms app's channel allocations inline on the listing page (none sent)
        "channel_allocations-TOTAL_FORMS": "0",
        "channel_allocations-INITIAL_FORMS": "0",
    }
    return {**data, **over}


def test_admin_payment_window_is_entered_and_shown_in_minutes(staff, merchant):
    listing = make_listing(merchant, quota=5, open_=False, window=600)
    page = staff.get(change_url(listing)).content.decode()
    assert 'name="payment_window_minutes"' in page and 'value="10"' in page
    assert 'name="payment_window_seconds"' not in page

    r = staff.post(change_url(listing), listing_form(listing, payment_window_minutes="15"))
    assert r.status_code == 302, refused(r)
    assert Listing.objects.get(pk=listing.pk).payment_window_seconds == 15 * 60
    assert 'value="15"' in staff.get(change_url(listing)).content.decode()

    r = staff.post(change_url(listing), listing_form(listing, payment_window_minutes="1.5"))
    assert r.status_code == 302 and Listing.objects.get(pk=listing.pk).payment_window_seconds == 90
    r = staff.post(change_url(listing), listing_form(listing, payment_window_minutes="0.25"))  # 15 s
    assert r.status_code == 200 and refused(r)
    assert Listing.objects.get(pk=listing.pk).payment_window_seconds == 90


def test_admin_unchanged_odd_window_is_kept_exact(staff, merchant):
    listing = make_listing(merchant, quota=5, open_=False, window=31)  # set by the API: 0.52 min shown
    r = staff.post(change_url(listing), listing_form(listing, payment_window_minutes="0.52", quota=4))
    assert r.status_code == 302, refused(r)
    listing = Listing.objects.get(pk=listing.pk)
    assert (listing.quota, listing.payment_window_seconds) == (4, 31)


def test_admin_new_listing_takes_minutes(staff, merchant):
    listing = make_listing(merchant, quota=2, on_hand=20, open_=False)
    data = {**listing_form(listing, quota=3), "session": listing.session_id, "sku": listing.sku_id}
    r = staff.post(add_url(Listing), {**data, "payment_window_minutes": "5"})
    assert r.status_code == 302, refused(r)
    assert Listing.objects.latest("pk").payment_window_seconds == 300


def test_admin_show_platforms_are_checkboxes_that_round_trip(staff, merchant):
    page = staff.get(add_url(LiveSession)).content.decode()
    for value in ("storefront", "douyin", "kuaishou", "taobao"):
        assert f'type="checkbox" name="platforms" value="{value}"' in page
    show = {
        "title": "年货节",
        "streamer": "小雅",
        "scheduled_at_0": "",
        "scheduled_at_1": "",
        **{f"listings-{k}": v for k, v in (("TOTAL_FORMS", 0), ("INITIAL_FORMS", 0), ("MAX_NUM_FORMS", 1000))},
    }
    r = staff.post(add_url(LiveSession), {**show, "platforms": ["taobao", "douyin"]})
    assert r.status_code == 302, refused(r)
    created = LiveSession.objects.get(title="年货节")
    assert created.platforms == ["douyin", "taobao"]
    page = staff.get(change_url(created)).content.decode()
    checked = re.findall(r'<input type="checkbox" name="platforms" value="(\w+)"[^>]* checked>', page)
    assert checked == ["douyin", "taobao"]

    r = staff.post(change_url(created), {**show, "platforms": ["storefront"]})
    assert r.status_code == 302 and LiveSession.objects.get(pk=created.pk).platforms == ["storefront"]
    r = staff.post(change_url(created), show)  # none ticked
    assert r.status_code == 302 and LiveSession.objects.get(pk=created.pk).platforms == []
    r = staff.post(change_url(created), {**show, "platforms": ["myspace"]})
    assert r.status_code == 200 and refused(r) and LiveSession.objects.get(pk=created.pk).platforms == []


def test_admin_ended_show_lists_platform_names(staff, merchant):
    show = services.session_end(session=make_session(merchant))
    page = staff.get(change_url(show)).content.decode()
    assert "Live storefront" in page and "[&#x27;storefront&#x27;]" not in page


def test_pictures_are_behind_the_tenant_wall(merchant, other_merchant):
    mine = ProductFactory(merchant=merchant, name="Mine")
    theirs = ProductFactory(merchant=other_merchant, name="Theirs")
    my_picture = services.product_image_add(product=mine, image=image_upload())
    their_picture = services.product_image_add(product=theirs, image=image_upload(), alt="secret-alt")
    their_sku = services.sku_create(
        merchant=other_merchant,
        product=theirs,
        code="THEIRS",
        name="",
        price=Decimal("9.90"),
        on_hand=1,
        image=image_upload(color="#123456"),
    )
    a = login(merchant, "staff-a")

    for path in (
        reverse("admin:catalog_product_changelist"),
        reverse("admin:catalog_sku_changelist"),
        reverse("admin:catalog_listing_changelist"),
        change_url(mine),
    ):
        page = a.get(path).content.decode()
        assert their_picture.image.url not in page and their_sku.image.url not in page and "secret-alt" not in page
    assert my_picture.image.url in a.get(change_url(mine)).content.decode()
    assert a.get(change_url(theirs)).status_code in (302, 404)  # not theirs to open
    assert a.get(change_url(their_sku)).status_code in (302, 404)

    # Their picture's id posted on my product page cannot reach it: not a row of my formset.
    row = {"id": their_picture.pk, "product": mine.pk, "alt": "hijacked", "position": "0"}
    r = a.post(change_url(mine), product_post(mine, images=[row], initial=1))
    assert r.status_code == 200  # refused: "select a valid choice"
    r = a.post(change_url(mine), product_post(mine, images=[{**row, "DELETE": "on"}], initial=1))
    assert r.status_code in (200, 302)  # a row that is not mine to delete: nothing is deleted
    their_picture.refresh_from_db()
    assert their_picture.alt == "secret-alt" and their_picture.product_id == theirs.pk
    assert default_storage.exists(their_picture.image.name)


def test_admin_product_category_is_edited_listed_and_filtered_within_the_merchant(staff, merchant, other_merchant):
    lipstick = ProductFactory(merchant=merchant, name="口红", category="美妆")
    ProductFactory(merchant=merchant, name="围巾", category="服饰")
    ProductFactory(merchant=merchant, name="杂货")
    ProductFactory(merchant=other_merchant, name="Rival thing", category="RivalCategory")
    changelist = reverse("admin:catalog_product_changelist")

    page = staff.get(changelist).content.decode()
    assert "美妆" in page and "服饰" in page and "No category" in page
    assert "RivalCategory" not in page  # the filter lists this merchant's categories only
    filtered = staff.get(changelist, {"category": "美妆"}).content.decode()
    assert "口红" in filtered and "围巾" not in filtered and "杂货" not in filtered
    none = staff.get(changelist, {"category": "-"}).content.decode()
    assert "杂货" in none and "口红" not in none

    r = staff.post(change_url(lipstick), {**product_post(lipstick, images=[]), "category": "彩妆"})
    assert r.status_code == 302, refused(r)
    lipstick.refresh_from_db()
    assert lipstick.category == "彩妆"
