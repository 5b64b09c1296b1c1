"""Application errors: a message for people, a stable ``code`` for machines, an HTTP status."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "error"
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "extra": self.extra}


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409


RETRY_AFTER_SECONDS = 1
"""What a 503 tells the client to wait before retrying (``Retry-After``)."""


class DatabaseUnavailable(ApplicationError):
    """The database could not be reached in time (pool exhausted, connection lost, restarting):
    nothing was done; retry shortly."""

    code = "temporarily_unavailable"
    http_status = 503


def is_database_unavailable(exc: BaseException) -> bool:
    """A database fault that is not the request's fault (Django's OperationalError and
    InterfaceError, which wrap psycopg's pool timeouts and lost connections)."""
    from django.db import InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError)


def database_unavailable() -> DatabaseUnavailable:
    return DatabaseUnavailable("the database is busy or unreachable; nothing was changed — please retry")
