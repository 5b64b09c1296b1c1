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
        post_migrate.connect(ensure_schedules, sender=self)
