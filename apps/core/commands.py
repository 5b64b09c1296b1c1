"""Base class for management commands that act on the running system's Redis."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from .redis import require_redis


class RedisCommand(BaseCommand):
    """A command that needs Redis (the gate, the task queue). Before doing anything it checks
    that there is one and that it answers; if not, it stops with a message saying how to point it
    (start ./run, or set REDIS_URL) instead of a traceback or a half-done run."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            require_redis()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        return super().execute(*args, **options)
