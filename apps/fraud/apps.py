from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate, post_save
from django.utils.translation import gettext_lazy as _


def ensure_schedules(sender, **kwargs) -> None:  # noqa: ANN001, ARG001
    """The scoring catch-up: a short burst every minute (idempotent; runs after every migrate)."""
    from django.utils import timezone
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="risk scoring",
        defaults={
            "func": "apps.fraud.scoring.score_burst",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "next_run": timezone.now(),
        },
    )


class FraudConfig(AppConfig):
    name = "apps.fraud"
    label = "fraud"
    verbose_name = _("Risk control")

    def ready(self) -> None:
        from apps.merchants.models import Merchant
        from apps.orders import hooks

        from . import receivers, review
        from .hotpath import note_closed, risk_guard
        from .rules import rules_cached

        if settings.FRAUD_RULES:
            hooks.registry.guard = risk_guard
            hooks.registry.closed = note_closed
            hooks.registry.guard_local = rules_cached
        hooks.registry.risk_of = receivers.risk_of
        hooks.registry.confirm_filter = receivers.confirm_filter
        hooks.registry.risk_review = review.review_orders
        hooks.registry.session_risk_counts = receivers.session_risk_counts
        hooks.registry.read_prefetch += ("risk_assessment",)
        hooks.order_changed.connect(receivers.on_order_changed, dispatch_uid="fraud.order_changed")
        post_save.connect(receivers.on_merchant_saved, sender=Merchant, dispatch_uid="fraud.merchant_saved")
        post_save.connect(receivers.on_rules_saved, dispatch_uid="fraud.rules_saved")
        post_migrate.connect(ensure_schedules, sender=self)
