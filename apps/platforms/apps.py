from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:  # noqa: ANN001, ARG001
    """Each a short burst every minute (idempotent; runs after every migrate): the inbox
    processing catch-up, the Taobao TMC pull, the stock and shipment sync sweeps."""
    from django.utils import timezone
    from django_q.models import Schedule

    jobs = {
        "platform inbox": "apps.platforms.processing.process_burst",
        "taobao pull": "apps.platforms.intake.pull_burst",
        "platform stock sync sweep": "apps.platforms.tasks.stock_sweep",
        "platform shipment sync sweep": "apps.platforms.tasks.ship_sweep",
    }
    for name, func in jobs.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": 1,
                "repeats": -1,
                "next_run": timezone.now(),
            },
        )


class PlatformsConfig(AppConfig):
    name = "apps.platforms"
    label = "platforms"
    verbose_name = _("Sales platforms")

    def ready(self) -> None:
        from apps.catalog.hooks import listing_changed
        from apps.inventory.hooks import stock_changed
        from apps.orders import hooks

        from . import admin_sync, receivers  # noqa: F401 - admin_sync registers the sync lists
        from .models import ListingChannelAllocation, PlatformShop, PlatformSkuMapping
        from .reads import platform_of

        hooks.registry.platform_of = platform_of
        hooks.registry.read_prefetch += ("platform_order__shop",)
        post_migrate.connect(ensure_schedules, sender=self)
        hooks.order_changed.connect(receivers.on_order_changed, dispatch_uid="platforms.order_changed")
        stock_changed.connect(receivers.on_stock_changed, dispatch_uid="platforms.stock_changed")
        listing_changed.connect(receivers.on_listing_changed, dispatch_uid="platforms.listing_changed")
        for signal in (post_save, post_delete):
            signal.connect(receivers.on_allocation_saved, sender=ListingChannelAllocation,
                           dispatch_uid=f"platforms.allocation.{signal is post_save}")  # fmt: skip
            signal.connect(receivers.on_mapping_saved, sender=PlatformSkuMapping,
                           dispatch_uid=f"platforms.mapping.{signal is post_save}")  # fmt: skip
        post_save.connect(receivers.on_shop_saved, sender=PlatformShop, dispatch_uid="platforms.shop_saved")
