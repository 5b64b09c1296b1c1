from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:
    """The SMS sweep (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="sms retries",
        defaults={
            "func": "apps.notifications.tasks.retry_due_messages",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = _("Buyer notifications")

    def ready(self) -> None:
        from apps.orders.hooks import order_changed

        from .receivers import on_order_changed

        post_migrate.connect(ensure_schedules, sender=self)
        order_changed.connect(on_order_changed, dispatch_uid="notifications.order_changed")
