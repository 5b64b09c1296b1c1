from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:
    """The retry sweep (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="webhook retries",
        defaults={
            "func": "apps.webhooks.tasks.retry_due_deliveries",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


class WebhooksConfig(AppConfig):
    name = "apps.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        from apps.inventory.hooks import stock_changed
        from apps.orders.hooks import order_changed

        from .sources import on_order_changed, on_stock_changed

        post_migrate.connect(ensure_schedules, sender=self)
        order_changed.connect(on_order_changed, dispatch_uid="webhooks.order_changed")
        stock_changed.connect(on_stock_changed, dispatch_uid="webhooks.stock_changed")
