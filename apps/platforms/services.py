"""Writes of the platforms' configuration: connecting shops, SKU mappings, channel allocations.

Secrets (``app_secret``, ``access_token``, ``msg_secret``) are encrypted by their fields when
saved; nothing here logs or returns them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.catalog import hooks
from apps.catalog import services as catalog
from apps.catalog.errors import InvalidInput, ListingStateError
from apps.catalog.models import SKU, Listing
from apps.core.errors import ApplicationError, NotFound
from apps.merchants.models import Merchant

from .errors import AllocationConflict, AllocationExceedsQuota, InvalidMsgSecret, ShopExists
from .models import ChannelMode, ListingChannelAllocation, PlatformShop, PlatformSkuMapping, ShopPlatform

AES_KEY_BYTES = (16, 24, 32)
SHOP_FIELDS = ("platform", "shop_id", "name", "app_key", "app_secret", "access_token", "msg_secret", "api_base_url")
SECRET_FIELDS = ("app_secret", "access_token", "msg_secret")
_url = URLValidator(schemes=["http", "https"])


# --- shops ------------------------------------------------------------------------------------------
def check_msg_secret(value: str) -> None:
    """A Kuaishou message key: standard base64 of a 16, 24 or 32-byte AES key."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) not in AES_KEY_BYTES:
        raise InvalidMsgSecret(
            _("msg_secret must be the base64 of a 16, 24 or 32-byte AES key (Kuaishou's message secret)"),
            extra={"field": "msg_secret"},
        )


def check_api_base_url(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        _url(value)
    except ValidationError:
        raise ApplicationError(
            _("api_base_url must be an http:// or https:// URL"), code="invalid_url", extra={"field": "api_base_url"}
        ) from None
    return value.rstrip("/")


def _required(shop: PlatformShop, field: str) -> None:
    if not str(getattr(shop, field) or "").strip():
        raise InvalidInput(_("%(field)s is required") % {"field": field}, extra={"field": field})


def shop_validate(shop: PlatformShop) -> None:
    """The rules of a shop about to be saved (new or changed): required fields, a Kuaishou
    message key, an http(s) gateway, and no second connection of the same platform shop.
    Raises InvalidInput (``invalid``), InvalidMsgSecret, ApplicationError ``invalid_url``,
    ShopExists (409). The API and the admin form both run it."""
    if shop.platform not in ShopPlatform.values:
        raise InvalidInput(
            _("platform must be one of: %(allowed)s") % {"allowed": ", ".join(ShopPlatform.values)},
            extra={"field": "platform"},
        )
    shop.shop_id = (shop.shop_id or "").strip()
    shop.app_key = (shop.app_key or "").strip()
    for field in ("shop_id", "app_key", "app_secret"):
        _required(shop, field)
    if shop.platform == ShopPlatform.KUAISHOU:
        if not shop.msg_secret:
            raise InvalidMsgSecret(
                _("msg_secret is required for Kuaishou (it decrypts the pushed messages)"),
                extra={"field": "msg_secret"},
            )
        check_msg_secret(shop.msg_secret)
    shop.api_base_url = check_api_base_url(shop.api_base_url)
    same = PlatformShop.objects.filter(platform=shop.platform, shop_id=shop.shop_id)
    if shop.pk is not None:
        same = same.exclude(pk=shop.pk)
    clash = Q(merchant_id=shop.merchant_id)  # one row per shop per merchant, enabled or not
    if shop.enabled:
        clash |= Q(enabled=True)  # and one enabled connection of a platform shop in all
    if same.filter(clash).exists():
        raise ShopExists(
            _("this %(platform)s shop %(shop_id)s is already connected")
            % {"platform": shop.get_platform_display(), "shop_id": shop.shop_id},
            extra={"field": "shop_id", "platform": shop.platform, "shop_id": shop.shop_id},
        )


def _save(shop: PlatformShop) -> PlatformShop:
    try:
        with transaction.atomic():
            shop.save()
    except IntegrityError:  # a concurrent connection of the same shop won the race
        raise ShopExists(
            _("this %(platform)s shop %(shop_id)s is already connected")
            % {"platform": shop.get_platform_display(), "shop_id": shop.shop_id},
            extra={"field": "shop_id", "platform": shop.platform, "shop_id": shop.shop_id},
        ) from None
    return shop


@transaction.atomic
def shop_save(*, shop: PlatformShop) -> PlatformShop:
    """Validate and save a shop built or changed elsewhere (the admin's form)."""
    shop_validate(shop)
    return _save(shop)


@transaction.atomic
def shop_create(
    *,
    merchant: Merchant,
    platform: str,
    shop_id: str,
    app_key: str,
    app_secret: str,
    name: str = "",
    access_token: str = "",
    msg_secret: str = "",
    api_base_url: str = "",
    enabled: bool = True,
) -> PlatformShop:
    """Connect a platform shop. Raises what :func:`shop_validate` raises."""
    shop = PlatformShop(
        merchant=merchant,
        platform=platform,
        shop_id=shop_id,
        name=name,
        app_key=app_key,
        app_secret=app_secret,
        access_token=access_token,
        msg_secret=msg_secret,
        api_base_url=api_base_url,
        enabled=enabled,
    )
    shop_validate(shop)
    return _save(shop)


@transaction.atomic
def shop_update(*, shop: PlatformShop, data: dict[str, Any]) -> PlatformShop:
    """Change a shop's fields (``SHOP_FIELDS`` and ``enabled``); a secret not in ``data`` is kept.
    The platform of a connected shop does not change (connect a new shop instead)."""
    locked = PlatformShop.objects.select_for_update().get(pk=shop.pk)
    if "platform" in data and data["platform"] != locked.platform:
        raise InvalidInput(
            _("the platform of a connected shop cannot change; connect a new shop"), extra={"field": "platform"}
        )
    for field in (*SHOP_FIELDS, "enabled"):
        if field in data:
            setattr(locked, field, data[field])
    shop_validate(locked)
    return _save(locked)


@transaction.atomic
def shop_delete(*, shop: PlatformShop) -> None:
    """Disconnect a shop: its SKU mappings go with it."""
    PlatformShop.objects.filter(pk=shop.pk).delete()


def shop_sync_state_update(
    *,
    shop_id: int,
    message_at: datetime | None = None,
    pull_at: datetime | None = None,
    error: str | None = None,
) -> None:
    """Record what the intake saw: a message received, a pull done, an error ("" clears it).
    One UPDATE, no lock (the latest writer wins; these are for people to read)."""
    changes: dict[str, Any] = {}
    if message_at is not None:
        changes["last_message_at"] = message_at
    if pull_at is not None:
        changes["last_pull_at"] = pull_at
    if error is not None:
        changes["last_error"] = error[:500]
        changes["last_error_at"] = timezone.now() if error else None
    if changes:
        PlatformShop.objects.filter(pk=shop_id).update(**changes)


# --- SKU mappings -----------------------------------------------------------------------------------
@transaction.atomic
def mapping_set(
    *, shop: PlatformShop, platform_sku_id: str, sku: SKU, platform_item_id: str = ""
) -> tuple[PlatformSkuMapping, bool]:
    """Map ``platform_sku_id`` of ``shop`` to ``sku`` (replacing an earlier mapping of it).
    Returns the mapping and whether it is new. The SKU must be the shop's merchant's."""
    platform_sku_id = str(platform_sku_id or "").strip()
    if not platform_sku_id:
        raise InvalidInput(_("platform_sku_id is required"), extra={"field": "platform_sku_id"})
    if sku.merchant_id != shop.merchant_id:
        raise InvalidInput(_("no such SKU"), extra={"field": "sku"})
    mapping, created = PlatformSkuMapping.objects.select_for_update().get_or_create(
        shop=shop, platform_sku_id=platform_sku_id, defaults={"sku": sku, "platform_item_id": platform_item_id}
    )
    if not created:
        mapping.sku = sku
        mapping.platform_item_id = platform_item_id
        mapping.save(update_fields=["sku", "platform_item_id"])
    return mapping, created


@transaction.atomic
def mapping_delete(*, shop: PlatformShop, platform_sku_id: str) -> None:
    """Remove the explicit mapping (the SKU then matches by merchant SKU code again)."""
    deleted, _rows = PlatformSkuMapping.objects.filter(shop=shop, platform_sku_id=str(platform_sku_id)).delete()
    if not deleted:
        raise NotFound(_("no mapping of platform SKU %(id)s") % {"id": platform_sku_id})


# --- channel allocations ----------------------------------------------------------------------------
def allocations_check(*, quota: int, allocations: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalise and check a listing's channel rows ``[{platform, mode, units}]``: known
    platforms, each once, units only (and always) for ``allocated``, and allocated units in all
    not over ``quota``. Returns the rows cleaned; raises InvalidInput or AllocationExceedsQuota."""
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for row in allocations:
        platform, mode, units = row.get("platform"), row.get("mode") or ChannelMode.SHARED, row.get("units")
        if platform not in ShopPlatform.values:
            raise InvalidInput(
                _("platform must be one of: %(allowed)s") % {"allowed": ", ".join(ShopPlatform.values)},
                extra={"field": "platform"},
            )
        if platform in seen:
            raise InvalidInput(_("%(platform)s is listed twice") % {"platform": platform}, extra={"field": "platform"})
        seen.add(platform)
        if mode not in ChannelMode.values:
            raise InvalidInput(_("mode must be shared or allocated"), extra={"field": "mode"})
        if mode == ChannelMode.ALLOCATED:
            if units is None or isinstance(units, bool) or not isinstance(units, int) or units < 0:
                raise InvalidInput(
                    _("units is required for an allocated channel (a whole number, 0 or more)"),
                    extra={"field": "units"},
                )
        elif units:
            raise InvalidInput(_("a shared channel takes no units"), extra={"field": "units"})
        cleaned.append({"platform": platform, "mode": mode, "units": units if mode == ChannelMode.ALLOCATED else 0})
    allocated = sum(r["units"] for r in cleaned)
    if allocated > quota:
        raise AllocationExceedsQuota(
            _("the channels' allocated units (%(allocated)d) exceed the listing's quota (%(quota)d)")
            % {"allocated": allocated, "quota": quota},
            extra={"field": "units", "quota": quota, "allocated": allocated},
        )
    return sorted(cleaned, key=lambda r: r["platform"])


def _conflict(platform: str, least: int, most: int) -> AllocationConflict:
    return AllocationConflict(
        _(
            "%(platform)s can be allocated %(least)d to %(most)d units now "
            "(sold units stay; only the shared part's unsold units can move)"
        )
        % {"platform": platform, "least": least, "most": max(most, 0)},
        extra={"field": "units", "platform": platform, "least": least, "most": max(most, 0)},
    )


@transaction.atomic
def allocations_set(*, listing: Listing, allocations: Iterable[dict[str, Any]]) -> list[ListingChannelAllocation]:
    """Replace a listing's channel rows with ``allocations`` (a platform left out shares the
    quota) and make them real: an allocated platform's units are a channel pool (a child
    listing, ``Listing.pools``, that only that platform's orders draw on), the parent's quota the
    shared part. Only unsold units move: a pool keeps what it sold, and takes units from the
    shared part's unsold ones; a platform back to shared closes its pool (its quota becomes what
    it sold, its unsold units return to the parent).

    Locks the listing row, then its pools' rows by pk (the order ``listing_update``,
    ``listing_close`` and the stock locks take them), then decides on the locked figures.
    Raises InvalidInput, AllocationExceedsQuota (more than the whole quota), AllocationConflict
    (409: sold units would move, or the shared part has too few unsold units), ListingStateError
    (a closed listing) — all before any write."""
    locked = Listing.objects.select_for_update(of=("self",)).get(pk=listing.pk)
    if locked.parent_id is not None:
        raise ListingStateError(_("a platform's channel pool follows its listing; change the listing"))
    if locked.status == Listing.Status.CLOSED:
        raise ListingStateError(_("a closed listing cannot be changed"))
    pools = {p.channel: p for p in catalog.pools_lock(locked.pk)}
    whole = locked.quota + catalog.pools_quota(list(pools.values()))
    cleaned = allocations_check(quota=whole, allocations=allocations)
    wanted = {r["platform"]: r["units"] for r in cleaned if r["mode"] == ChannelMode.ALLOCATED}

    def held(pool: Listing) -> int:
        return pool.sold if pool.status == Listing.Status.CLOSED else pool.quota

    targets: dict[str, int] = {}  # platform -> its pool's new quota
    for platform, pool in pools.items():
        if platform in wanted:
            targets[platform] = wanted[platform]
        elif pool.status != Listing.Status.CLOSED:
            targets[platform] = pool.sold  # back to shared: the pool closes on what it sold
    for platform, units in wanted.items():
        targets.setdefault(platform, units)
    deltas = {p: t - (held(pools[p]) if p in pools else 0) for p, t in targets.items()}
    need, unsold = sum(deltas.values()), locked.quota - locked.sold
    for platform, units in sorted(wanted.items()):
        least = pools[platform].sold if platform in pools else 0
        if units < least:
            raise _conflict(platform, least, units + unsold - need)
    if need > unsold:
        platform = max(sorted(wanted), key=lambda p: deltas[p])
        raise _conflict(platform, pools[platform].sold if platform in pools else 0, wanted[platform] + unsold - need)

    now = timezone.now()
    for platform, target in sorted(targets.items()):
        existing = pools.get(platform)
        if platform not in wanted:
            assert existing is not None
            _pool_close(existing, now)
        elif existing is None:
            created = Listing.objects.create(
                merchant_id=locked.merchant_id,
                session_id=locked.session_id,
                sku_id=locked.sku_id,
                parent=locked,
                channel=platform,
                quota=target,
                **{f: getattr(locked, f) for f in catalog.POOL_FOLLOWS},
            )
            hooks.listing_changed.send(sender=Listing, listing_id=created.pk)
        elif deltas[platform] or existing.status == Listing.Status.CLOSED:
            follow = {f: getattr(locked, f) for f in catalog.POOL_FOLLOWS}  # a closed pool reopens with it
            Listing.objects.filter(pk=existing.pk).update(quota=target, version=F("version") + 1, **follow)
            hooks.listing_changed.send(sender=Listing, listing_id=existing.pk)
    if need:
        Listing.objects.filter(pk=locked.pk).update(quota=F("quota") - need, version=F("version") + 1)
        hooks.listing_changed.send(sender=Listing, listing_id=locked.pk)

    keep = [r["platform"] for r in cleaned]
    ListingChannelAllocation.objects.filter(listing=locked).exclude(platform__in=keep).delete()
    rows = []
    for r in cleaned:
        row, _created = ListingChannelAllocation.objects.update_or_create(
            listing=locked, platform=r["platform"], defaults={"mode": r["mode"], "units": r["units"]}
        )
        rows.append(row)
    return rows


def _pool_close(pool: Listing, now: datetime) -> None:
    """Close a locked channel pool: its quota becomes what it sold (the caller gives the unsold
    units back to the parent), its window ends now."""
    closes_at = pool.closes_at if pool.closes_at is not None and pool.closes_at <= now else now
    opens_at = pool.opens_at if pool.opens_at is not None and pool.opens_at < closes_at else None
    Listing.objects.filter(pk=pool.pk).update(
        status=Listing.Status.CLOSED,
        quota=pool.sold,
        closes_at=closes_at,
        opens_at=opens_at,
        version=F("version") + 1,
    )
    hooks.listing_changed.send(sender=Listing, listing_id=pool.pk)
