from __future__ import annotations

from apps.core.errors import ApplicationError


class InvalidSmsSettings(ApplicationError):
    """An SMS account, template or opt-out that cannot be saved (``extra.field`` names the field)."""

    code = "invalid"
