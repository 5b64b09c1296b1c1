from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:
    """The worker's recurring jobs (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    jobs = {
        "order expiry sweeper": ("apps.orders.tasks.expiry_sweeper", 1),
        "gate reconciler": ("apps.orders.tasks.reconcile_gates", 1),
        "ledger checkpoint": ("apps.orders.tasks.checkpoint_ledger", 1),
    }
    for name, (func, minutes) in jobs.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
                "next_run": timezone.now(),  # first run at the worker's first scheduler check
            },
        )


class OrdersConfig(AppConfig):
    name = "apps.orders"
    label = "orders"
    verbose_name = _("Order management")

    def ready(self) -> None:
        from apps.catalog.hooks import listing_changed, register_session_gmv
        from apps.catalog.models import Listing

        from .placement.gate.rebuild import on_listing_changed
        from .selectors import session_gmv

        post_migrate.connect(ensure_schedules, sender=self)
        listing_changed.connect(on_listing_changed, sender=Listing, dispatch_uid="orders.gate_follows_listing")
        register_session_gmv(lambda session_id: session_gmv(session_id=session_id))
