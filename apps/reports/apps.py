from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender: Any, **kwargs: Any) -> None:  # noqa: ARG001
    """The reports' rollup every minute (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="reports rollup",
        defaults={
            "func": "apps.reports.tasks.rollup_minute",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


class ReportsConfig(AppConfig):
    name = "apps.reports"
    label = "reports"
    verbose_name = _("Reports")

    def ready(self) -> None:
        from apps.orders import hooks

        from .rollups import on_order_changed

        hooks.order_changed.connect(on_order_changed, dispatch_uid="reports.order_changed")
        post_migrate.connect(ensure_schedules, sender=self)
