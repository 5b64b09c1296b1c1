from collections.abc import Callable

from apps.core.errors import ApplicationError


class RiskBlocked(ApplicationError):
    """The merchant's risk rules refused the attempt: nothing stays held, nothing is placed.
    ``after_release``: what to do once the gate's units are given back (``hooks.refusal_follow_up``)."""

    code = "risk_blocked"
    http_status = 403
    after_release: Callable[[], None] | None = None
