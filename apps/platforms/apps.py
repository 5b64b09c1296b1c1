from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:  # noqa: ANN001, ARG001
    """Inbox processing catch-up and the Taobao TMC pull, each a short burst every minute
    (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    for name, func in (
        ("platform inbox", "apps.platforms.processing.process_burst"),
        ("taobao pull", "apps.platforms.intake.pull_burst"),
    ):
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
        from apps.orders import hooks

        from .reads import platform_of

        hooks.registry.platform_of = platform_of
        hooks.registry.read_prefetch += ("platform_order__shop",)
        post_migrate.connect(ensure_schedules, sender=self)
