from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:  # noqa: ANN001, ARG001
    """Fulfilment's automation every minute (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="fulfilment automation",
        defaults={
            "func": "apps.fulfilment.tasks.fulfilment_minute",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


class FulfilmentConfig(AppConfig):
    name = "apps.fulfilment"
    label = "fulfilment"
    verbose_name = _("Fulfilment")

    def ready(self) -> None:
        from apps.orders import hooks

        from . import exception_queue
        from .admin import ship_orders
        from .payments.sandbox import sandbox_payment_register
        from .platform_refunds import platform_aftersale_apply
        from .refunds import buyer_panel, refunds_owed_of
        from .tracking import order_trace

        if ship_orders not in hooks.registry.order_admin_actions:
            hooks.registry.order_admin_actions.append(ship_orders)
        hooks.registry.order_trace_of = order_trace
        hooks.registry.order_aftersales_of = buyer_panel
        hooks.registry.refunds_owed_of = refunds_owed_of
        hooks.registry.exception_counts = exception_queue.exception_counts
        hooks.order_changed.connect(exception_queue.on_order_changed, dispatch_uid="fulfilment.order_changed")
        hooks.order_attention.connect(exception_queue.on_order_attention, dispatch_uid="fulfilment.order_attention")
        hooks.registry.sandbox_paid = sandbox_payment_register
        hooks.registry.platform_aftersale = platform_aftersale_apply
        post_migrate.connect(ensure_schedules, sender=self)
