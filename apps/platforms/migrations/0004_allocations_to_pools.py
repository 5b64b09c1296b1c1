"""Existing allocated channel rows become channel pools (``catalog.Listing.parent``): each takes
its units from its listing's quota, as far as the listing has them unsold (the row is set to what
was moved). Closed listings are left as they are. Run ``manage.py reconcile_stock`` afterwards
(or let the reconciler's pass do it) so the gate's quotas follow at once."""

from django.db import migrations
from django.db.models import F

POOL_FOLLOWS = ("price", "per_buyer_limit", "payment_window_seconds", "opens_at", "closes_at", "status")


def allocations_to_pools(apps, schema_editor):
    Allocation = apps.get_model("platforms", "ListingChannelAllocation")
    Listing = apps.get_model("catalog", "Listing")
    for row in Allocation.objects.filter(mode="allocated").order_by("listing_id", "platform"):
        parent = Listing.objects.select_for_update().filter(pk=row.listing_id, parent__isnull=True).first()
        if parent is None or parent.status == "closed":
            continue
        if Listing.objects.filter(parent_id=parent.pk, channel=row.platform).exists():
            continue
        units = max(0, min(row.units, parent.quota - parent.sold))
        Listing.objects.create(
            merchant_id=parent.merchant_id,
            session_id=parent.session_id,
            sku_id=parent.sku_id,
            parent_id=parent.pk,
            channel=row.platform,
            quota=units,
            **{f: getattr(parent, f) for f in POOL_FOLLOWS},
        )
        Listing.objects.filter(pk=parent.pk).update(quota=F("quota") - units, version=F("version") + 1)
        if units != row.units:
            Allocation.objects.filter(pk=row.pk).update(units=units)


def pools_to_allocations(apps, schema_editor):
    """Back: each pool's quota, sold units and order lines return to its listing."""
    Listing = apps.get_model("catalog", "Listing")
    OrderLine = apps.get_model("orders", "OrderLine")
    for pool in Listing.objects.filter(parent__isnull=False).order_by("pk"):
        OrderLine.objects.filter(listing_id=pool.pk).update(listing_id=pool.parent_id)
        Listing.objects.filter(pk=pool.parent_id).update(
            quota=F("quota") + pool.quota, sold=F("sold") + pool.sold, version=F("version") + 1
        )
        pool.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("platforms", "0003_sync"),
        ("catalog", "0003_channel_pools"),
        ("orders", "0005_line_reserved"),
    ]

    operations = [migrations.RunPython(allocations_to_pools, pools_to_allocations)]
