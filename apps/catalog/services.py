"""Catalog writes: products, SKUs, live shows, listings.

Listing changes are announced with ``hooks.listing_changed`` (the gate follows after commit);
stock is reached through ``hooks.stock()`` (registered by the inventory app).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import F, Sum
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.merchants.models import Merchant

from . import hooks
from .errors import InvalidInput, ListingStateError, QuotaExceedsSupply, SessionEnded
from .images import image_format
from .models import SKU, VARIANT_MAX_LENGTH, Listing, LiveSession, Platform, Product, ProductImage

ACTIVE_LISTING = (Listing.Status.SCHEDULED, Listing.Status.OPEN)


def _check_price(price: Decimal) -> None:
    if price <= 0:
        raise InvalidInput(_("price must be greater than 0"), extra={"field": "price"})


# --- products and SKUs -----------------------------------------------------------------------
@transaction.atomic
def product_create(
    *, merchant: Merchant, name: str, description: str = "", category: str = "", is_active: bool = True
) -> Product:
    return Product.objects.create(
        merchant=merchant, name=name, description=description, category=category.strip(), is_active=is_active
    )


@transaction.atomic
def product_update(*, product: Product, data: dict[str, Any]) -> Product:
    if "category" in data:
        data = {**data, "category": (data["category"] or "").strip()}
    for field in ("name", "description", "category", "is_active"):
        if field in data:
            setattr(product, field, data[field])
    product.save()
    return product


# --- pictures ----------------------------------------------------------------------------------
def _check_image(file: Any, field: str = "image") -> None:
    """A new upload must be an accepted image (``images.image_format``); raises InvalidInput."""
    try:
        image_format(file)
    except ValidationError as exc:
        raise InvalidInput(" ".join(exc.messages), code=exc.code or "invalid_image", extra={"field": field}) from exc


def _delete_file_after_commit(file: FieldFile) -> None:
    """Remove a stored picture once the row that pointed to it is gone for good (never before
    commit: a rolled-back change must still find its file)."""
    if file and file.name:
        storage, name = file.storage, file.name
        transaction.on_commit(lambda: storage.delete(name))


@transaction.atomic
def product_image_add(*, product: Product, image: File, alt: str = "", position: int | None = None) -> ProductImage:
    """Store a picture of the product through the default storage (after the checks of
    ``images.image_format``); without a position it goes last."""
    _check_image(image)
    if position is None:
        last = product.images.order_by("-position").values_list("position", flat=True).first()
        position = 0 if last is None else last + 1
    return ProductImage.objects.create(
        merchant_id=product.merchant_id, product=product, image=image, alt=alt, position=position
    )


@transaction.atomic
def product_image_update(*, picture: ProductImage, data: dict[str, Any]) -> ProductImage:
    """Change a picture's alt text, position or file (a replaced file is deleted after commit)."""
    old = None
    if data.get("image") is not None and data["image"] != picture.image:
        _check_image(data["image"])
        old = ProductImage.objects.get(pk=picture.pk).image
        picture.image = data["image"]
    for field in ("alt", "position"):
        if field in data:
            setattr(picture, field, data[field])
    picture.save()
    if old is not None:
        _delete_file_after_commit(old)
    return picture


@transaction.atomic
def product_image_delete(*, picture: ProductImage) -> None:
    file = picture.image
    picture.delete()
    _delete_file_after_commit(file)


# --- products and SKUs -----------------------------------------------------------------------
def _clean_variant(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(_("%(field)s must be text") % {"field": field}, extra={"field": field})
    value = " ".join(value.split())  # one space between words, none around: "红色 " is "红色"
    if len(value) > VARIANT_MAX_LENGTH:
        raise InvalidInput(
            _("%(field)s is at most %(max)d characters") % {"field": field, "max": VARIANT_MAX_LENGTH},
            extra={"field": field},
        )
    return value


def _check_variant_unique(*, sku_id: int | None, data: dict[str, Any]) -> None:
    """Two SKUs of one product are never the same colour and size (unless both are blank)."""
    row = SKU.objects.filter(pk=sku_id).values("product_id", "color", "size").first() if sku_id else None
    product = data.get("product")
    product_id = product.pk if product is not None else (row["product_id"] if row else None)
    color = data.get("color", row["color"] if row else "")
    size = data.get("size", row["size"] if row else "")
    if product_id is None or not (color or size):
        return
    same = SKU.objects.filter(product_id=product_id, color=color, size=size)
    if sku_id is not None:
        same = same.exclude(pk=sku_id)
    taken = same.values_list("code", flat=True).first()
    if taken is not None:
        raise InvalidInput(
            _("SKU %(code)s of this product is already %(variant)s")
            % {"code": taken, "variant": " / ".join(v for v in (color, size) if v)},
            code="duplicate_variant",
            extra={"field": "color" if color else "size"},
        )


def sku_check(*, merchant_id: int, sku_id: int | None, data: dict[str, Any]) -> None:
    """The rules of a SKU's own fields (price, code unique per merchant, colour and size unique
    per product, an accepted image); raises InvalidInput. Normalises ``color`` and ``size`` in
    ``data``. ``sku_create`` and ``sku_update`` run it; forms run it to show the error on the field."""
    for field in ("color", "size"):
        if field in data:
            data[field] = _clean_variant(data[field], field)
    if "color" in data or "size" in data:
        _check_variant_unique(sku_id=sku_id, data=data)
    if data.get("image") and not getattr(data["image"], "_committed", False):
        _check_image(data["image"])
    if "price" in data:
        if data["price"] is None:
            raise InvalidInput(_("price is required"), extra={"field": "price"})
        _check_price(data["price"])
    if "code" in data:
        taken = SKU.objects.filter(merchant_id=merchant_id, code=data["code"])
        if sku_id is not None:
            taken = taken.exclude(pk=sku_id)
        if taken.exists():
            raise InvalidInput(
                _("SKU code %(code)r already exists") % {"code": data["code"]},
                code="duplicate_code",
                extra={"field": "code"},
            )
    if "on_hand" in data and (data["on_hand"] is None or data["on_hand"] < 0):
        raise InvalidInput(_("on_hand cannot be negative"), extra={"field": "on_hand"})


@transaction.atomic
def sku_create(
    *,
    merchant: Merchant,
    product: Product,
    code: str,
    name: str,
    price: Decimal,
    on_hand: int,
    color: str = "",
    size: str = "",
    image: File | None = None,
) -> SKU:
    """Create a SKU and its stock row; initial stock is a ``receive`` movement. ``color`` and
    ``size`` make it a variant of its product (unique per product); ``image`` is its own picture."""
    _check_price(price)
    if product.merchant_id != merchant.pk:
        raise InvalidInput(_("product belongs to another merchant"), code="not_found", http_status=404)
    data: dict[str, Any] = {"code": code, "on_hand": on_hand, "color": color, "size": size, "product": product}
    if image:
        data["image"] = image
    sku_check(merchant_id=merchant.pk, sku_id=None, data=data)
    sku = SKU.objects.create(
        merchant=merchant,
        product=product,
        code=code,
        name=name,
        price=price,
        color=data["color"],
        size=data["size"],
        image=image or "",
    )
    hooks.stock().init(sku=sku, on_hand=on_hand)
    return sku


@transaction.atomic
def sku_update(*, sku: SKU, data: dict[str, Any], reason: str = "set on hand via API") -> SKU:
    """Change a SKU's fields; ``image`` replaces its picture (``None`` or "" removes it; the old
    file is deleted after commit); ``on_hand`` sets its stock."""
    sku_check(merchant_id=sku.merchant_id, sku_id=sku.pk, data=data)
    if "product" in data and data["product"].merchant_id != sku.merchant_id:
        raise InvalidInput(_("product belongs to another merchant"), code="not_found", http_status=404)
    for field in ("name", "price", "code", "product", "color", "size"):
        if field in data:
            setattr(sku, field, data[field])
    old_image = None
    if "image" in data and data["image"] != sku.image:
        old_image = SKU.objects.get(pk=sku.pk).image
        sku.image = data["image"] or ""
    sku.save()
    if old_image:
        _delete_file_after_commit(old_image)
    if "on_hand" in data:
        hooks.stock().set_on_hand(sku=sku, on_hand=data["on_hand"], reason=reason)
    return sku


# --- live shows ------------------------------------------------------------------------------
def _check_platforms(platforms: Any) -> list[str]:
    allowed = set(Platform.values)
    if not isinstance(platforms, list) or any(p not in allowed for p in platforms):
        raise InvalidInput(
            _("platforms must be a list drawn from %(allowed)s") % {"allowed": sorted(allowed)},
            extra={"field": "platforms"},
        )
    return list(dict.fromkeys(platforms))


@transaction.atomic
def session_create(
    *, merchant: Merchant, title: str, streamer: str, platforms: list[str], scheduled_at: datetime | None
) -> LiveSession:
    return LiveSession.objects.create(
        merchant=merchant,
        title=title,
        streamer=streamer,
        platforms=_check_platforms(platforms),
        scheduled_at=scheduled_at,
    )


@transaction.atomic
def session_update(*, session: LiveSession, data: dict[str, Any]) -> LiveSession:
    session = _session_lock(session.pk)  # decided on the row as it is, not as the caller read it
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded(_("an ended show cannot be changed"))
    if "platforms" in data:
        data["platforms"] = _check_platforms(data["platforms"])
    for field in ("title", "streamer", "platforms", "scheduled_at"):
        if field in data:
            setattr(session, field, data[field])
    session.save()
    return session


@transaction.atomic
def _session_lock(session_id: int) -> LiveSession:
    """Lock a show's row: the first lock of the global order (``apps/inventory/locks.py``)."""
    return LiveSession.objects.select_for_update().get(pk=session_id)


def session_start(*, session: LiveSession) -> LiveSession:
    session = _session_lock(session.pk)
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded(_("this show has ended"))
    if session.status == LiveSession.Status.SCHEDULED:
        session.status = LiveSession.Status.LIVE
        session.started_at = timezone.now()
        session.save(update_fields=["status", "started_at"])
    return session


@transaction.atomic
def session_end(*, session: LiveSession) -> LiveSession:
    """End the show and close every listing still on air (their unsold quota returns). Locks the
    show, then its listings (the global lock order)."""
    session = _session_lock(session.pk)
    if session.status == LiveSession.Status.ENDED:
        return session
    session.status = LiveSession.Status.ENDED
    session.ended_at = timezone.now()
    if session.started_at is None:
        session.started_at = session.ended_at
    session.save(update_fields=["status", "ended_at", "started_at"])
    # The show's active listings and channel pools locked by pk (a pool after its parent, as
    # ``allocations_set`` and the stock locks take them), then closed parent by parent (a
    # parent's close closes its pools).
    active = list(
        Listing.objects.filter(session=session, status__in=ACTIVE_LISTING)
        .order_by("pk")
        .select_for_update(of=("self",))
    )
    for listing in active:
        if listing.parent_id is None:
            listing_close(listing=listing)
    return session


# --- listings --------------------------------------------------------------------------------
def sku_stock_adjust(*, sku: SKU, delta: int, reason: str, kind: str | None = None, reference: str = "") -> None:
    """Receive goods or correct stock (the inventory app's rules; the gate follows after commit)."""
    hooks.stock().adjust(sku=sku, delta=delta, reason=reason, kind=kind, reference=reference)


def listing_supply(*, sku: SKU, exclude_listing_id: int | None = None) -> int:
    """Units the SKU can still give a listing: stock available minus other listings' unsold quota.
    Locks the stock row (inside the caller's transaction) so the answer holds until commit."""
    available = hooks.stock().lock_available(sku=sku)
    others = Listing.objects.filter(sku=sku, status__in=ACTIVE_LISTING)
    if exclude_listing_id:
        others = others.exclude(pk=exclude_listing_id)
    committed = others.aggregate(n=Sum(F("quota") - F("sold")))["n"] or 0
    return available - committed


def listing_validate(listing: Listing, *, pools_quota: int = 0) -> None:
    """Raise an ApplicationError unless the listing fits its SKU's stock and its own rules.
    ``listing.quota`` is the shared part; ``pools_quota`` what its channel pools hold (the whole
    quota, at least 1, is their sum)."""
    _check_price(listing.price)
    if listing.per_buyer_limit < 1:
        raise InvalidInput(_("per_buyer_limit must be at least 1"), extra={"field": "per_buyer_limit"})
    if listing.quota + pools_quota < 1:
        raise InvalidInput(_("quota must be at least 1"), extra={"field": "quota"})
    if listing.payment_window_seconds < 30:
        raise InvalidInput(_("payment_window_seconds must be at least 30"), extra={"field": "payment_window_seconds"})
    if listing.opens_at and listing.closes_at and listing.closes_at <= listing.opens_at:
        raise InvalidInput(_("closes_at must be after opens_at"), extra={"field": "closes_at"})
    if listing.quota < listing.sold:
        if pools_quota:
            raise InvalidInput(
                _("quota cannot go below the %(least)d units sold or allocated to platforms")
                % {"least": listing.sold + pools_quota},
                extra={"field": "quota", "least": listing.sold + pools_quota},
            )
        raise InvalidInput(
            _("quota cannot go below the %(sold)d units already sold") % {"sold": listing.sold},
            extra={"field": "quota"},
        )
    if listing.sku.merchant_id != listing.merchant_id or listing.session.merchant_id != listing.merchant_id:
        raise InvalidInput(_("sku and session must belong to your merchant"), code="not_found", http_status=404)
    if listing.status != Listing.Status.CLOSED:
        # listing_supply locks the stock row: two listings cannot carve the same units concurrently.
        supply = listing_supply(sku=listing.sku, exclude_listing_id=listing.pk)
        unsold = listing.quota - listing.sold
        if unsold > supply:
            whole = listing.quota + pools_quota
            raise QuotaExceedsSupply(
                _("quota %(quota)d exceeds what the SKU can supply (%(supply)d)")
                % {"quota": whole, "supply": supply + listing.sold + pools_quota},
                extra={"field": "quota", "supply": supply + listing.sold + pools_quota},
            )


@transaction.atomic
def listing_create(
    *,
    merchant: Merchant,
    session: LiveSession,
    sku: SKU,
    price: Decimal,
    quota: int,
    per_buyer_limit: int = 1,
    payment_window_seconds: int = 900,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
) -> Listing:
    session = _session_lock(session.pk)  # a show that ends meanwhile cannot gain a listing
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded(_("cannot add a listing to an ended show"))
    listing = Listing(
        merchant=merchant,
        session=session,
        sku=sku,
        price=price,
        quota=quota,
        per_buyer_limit=per_buyer_limit,
        payment_window_seconds=payment_window_seconds,
        opens_at=opens_at,
        closes_at=closes_at,
    )
    listing_validate(listing)
    listing.save()
    return listing


# --- channel pools (apps/platforms.services.allocations_set makes them) --------------------------
POOL_FOLLOWS = ("price", "per_buyer_limit", "payment_window_seconds", "opens_at", "closes_at", "status")


def pools_lock(listing_id: int) -> list[Listing]:
    """Lock a listing's channel pools by pk (after the listing's own row: the lock order)."""
    return list(Listing.objects.filter(parent_id=listing_id).order_by("pk").select_for_update(of=("self",)))


def pools_quota(pools: list[Listing]) -> int:
    """What the pools hold of the whole quota (a closed pool: what it sold)."""
    return sum(p.sold if p.status == Listing.Status.CLOSED else p.quota for p in pools)


def _pools_follow(parent: Listing, pools: list[Listing]) -> None:
    """The open pools (locked) take the parent's price, limit, window and status; a parent that
    closed closes them, and their unsold units go back to it (its quota_total stays)."""
    back = 0
    for pool in pools:
        if pool.status == Listing.Status.CLOSED:
            continue
        changes = {f: getattr(parent, f) for f in POOL_FOLLOWS if getattr(pool, f) != getattr(parent, f)}
        if parent.status == Listing.Status.CLOSED:
            back += pool.quota - pool.sold
            changes["quota"] = pool.sold
        if not changes:
            continue
        Listing.objects.filter(pk=pool.pk).update(**changes, version=F("version") + 1)
        hooks.listing_changed.send(sender=Listing, listing_id=pool.pk)
    if back:
        Listing.objects.filter(pk=parent.pk).update(quota=F("quota") + back, version=F("version") + 1)
        parent.refresh_from_db(fields=["quota", "version"])


@transaction.atomic
def listing_update(*, listing: Listing, data: dict[str, Any]) -> Listing:
    """Change a listing. A ``quota`` is the whole quota: with channel pools, the shared part
    becomes the whole minus what the pools hold (it may not go below what the shared part sold).
    Locks the listing, then its pools, which follow its price, limit and window."""
    listing = Listing.objects.select_for_update(of=("self",)).select_related("sku", "session").get(pk=listing.pk)
    if listing.parent_id is not None:
        raise ListingStateError(_("a platform's channel pool follows its listing; change the listing"))
    if listing.status == Listing.Status.CLOSED:
        raise ListingStateError(_("a closed listing cannot be changed"))
    pools = pools_lock(listing.pk)
    held = pools_quota(pools)
    for field in ("price", "quota", "per_buyer_limit", "payment_window_seconds", "opens_at", "closes_at"):
        if field in data:
            setattr(listing, field, data[field])
    if "quota" in data:
        listing.quota = data["quota"] - held
        if listing.quota < 0:
            raise InvalidInput(
                _("quota cannot go below the %(least)d units sold or allocated to platforms")
                % {"least": listing.sold + held},
                extra={"field": "quota", "least": listing.sold + held},
            )
    listing_validate(listing, pools_quota=held)
    listing.version = F("version") + 1
    listing.save()
    listing.refresh_from_db()
    _pools_follow(listing, pools)
    hooks.listing_changed.send(sender=Listing, listing_id=listing.pk)
    return listing


@transaction.atomic
def listing_open(*, listing: Listing) -> Listing:
    """Open now (the window starts now unless one was set and is still ahead). Locks the show,
    then the listing (the global lock order: ``session_end`` locks them the same way)."""
    session = _session_lock(Listing.objects.filter(pk=listing.pk).values_list("session_id", flat=True).get())
    listing = Listing.objects.select_for_update(of=("self",)).select_related("sku", "session").get(pk=listing.pk)
    if session.status == LiveSession.Status.ENDED:
        raise SessionEnded(_("a listing of an ended show cannot open"))
    if listing.parent_id is not None:
        raise ListingStateError(_("a platform's channel pool follows its listing; change the listing"))
    if listing.status == Listing.Status.CLOSED:
        raise ListingStateError(_("a closed listing cannot reopen; create a new listing"))
    now = timezone.now()
    if listing.closes_at and listing.closes_at <= now:
        raise ListingStateError(_("the listing's window has already ended"))
    if listing.status != Listing.Status.OPEN:
        listing.status = Listing.Status.OPEN
        if listing.opens_at is None or listing.opens_at > now:
            listing.opens_at = now
        listing.version = F("version") + 1
        listing.save(update_fields=["status", "opens_at", "version"])
        listing.refresh_from_db()
        _pools_follow(listing, pools_lock(listing.pk))
        if session.status == LiveSession.Status.SCHEDULED:
            session_start(session=session)
        hooks.listing_changed.send(sender=Listing, listing_id=listing.pk)
    return listing


@transaction.atomic
def listing_close(*, listing: Listing) -> Listing:
    """Close now; its channel pools close with it (their unsold units back to it). Locks the
    listing, then its pools."""
    listing = Listing.objects.select_for_update(of=("self",)).select_related("sku", "session").get(pk=listing.pk)
    if listing.status != Listing.Status.CLOSED:
        listing.status = Listing.Status.CLOSED
        now = timezone.now()
        if listing.closes_at is None or listing.closes_at > now:
            listing.closes_at = now
        if listing.opens_at and listing.opens_at >= listing.closes_at:
            listing.opens_at = None  # never opened: keep the window ordered
        listing.version = F("version") + 1
        listing.save(update_fields=["status", "closes_at", "opens_at", "version"])
        listing.refresh_from_db()
        if listing.parent_id is None:
            _pools_follow(listing, pools_lock(listing.pk))
        hooks.listing_changed.send(sender=Listing, listing_id=listing.pk)
    return listing
