from __future__ import annotations

from apps.core.errors import ApplicationError


class InvalidUrl(ApplicationError):
    code = "invalid_url"


class UnknownEventType(ApplicationError):
    code = "unknown_event_type"


class TooManyEndpoints(ApplicationError):
    code = "too_many_endpoints"
