from apps.core.errors import ApplicationError


class RiskBlocked(ApplicationError):
    """The merchant's risk rules refused the attempt: nothing was held or placed."""

    code = "risk_blocked"
    http_status = 403
