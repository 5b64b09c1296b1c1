from __future__ import annotations

from decimal import Decimal

import factory

from apps.catalog import services as catalog
from apps.catalog.models import SKU, Listing, LiveSession, Product
from apps.merchants import services as merchants
from apps.merchants.models import Merchant


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"m{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


def make_token(merchant: Merchant, name: str = "tools", role: str = "owner") -> str:
    """A token that may do everything in its merchant (tests of one role pass ``role``)."""
    return merchants.api_token_create(merchant=merchant, name=name, role=role)[1]


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Product {n}")


def make_sku(merchant: Merchant, *, on_hand: int = 100, price: str = "100.00", code: str | None = None) -> SKU:
    product = ProductFactory(merchant=merchant)
    return catalog.sku_create(
        merchant=merchant,
        product=product,
        code=code or f"SKU-{product.pk}",
        name="",
        price=Decimal(price),
        on_hand=on_hand,
    )


def make_session(merchant: Merchant, title: str = "Show") -> LiveSession:
    return catalog.session_create(
        merchant=merchant, title=title, streamer="Host", platforms=["storefront"], scheduled_at=None
    )


def make_listing(
    merchant: Merchant,
    *,
    quota: int = 10,
    on_hand: int | None = None,
    limit: int = 1,
    price: str = "9.90",
    window: int = 900,
    open_: bool = True,
    session: LiveSession | None = None,
    sku: SKU | None = None,
) -> Listing:
    sku = sku or make_sku(merchant, on_hand=quota if on_hand is None else on_hand)
    session = session or make_session(merchant)
    listing = catalog.listing_create(
        merchant=merchant,
        session=session,
        sku=sku,
        price=Decimal(price),
        quota=quota,
        per_buyer_limit=limit,
        payment_window_seconds=window,
    )
    return catalog.listing_open(listing=listing) if open_ else listing


def order_body(listing_id: int, buyer: str = "b1", quantity: int = 1) -> dict:
    return {
        "listing": listing_id,
        "quantity": quantity,
        "buyer": {"external_id": buyer, "name": "Buyer", "phone": "13800000000"},
        "shipping_address": {
            "name": "Buyer",
            "phone": "13800000000",
            "province": "浙江省",
            "city": "杭州市",
            "district": "西湖区",
            "detail": "文三路 1 号",
        },
    }


def png_bytes(color: str = "#c0392b", size: tuple[int, int] = (64, 64), fmt: str = "PNG") -> bytes:
    """A real picture made here with Pillow (a coloured rectangle), in the format asked."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def image_upload(name: str = "picture.png", color: str = "#c0392b", fmt: str = "PNG"):  # type: ignore[no-untyped-def]
    """An uploaded file as a browser sends it (multipart), holding a real picture."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    content_type = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}[fmt]
    return SimpleUploadedFile(name, png_bytes(color, fmt=fmt), content_type=content_type)
