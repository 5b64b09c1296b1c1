from __future__ import annotations

from apps.core.errors import ApplicationError


class ShopExists(ApplicationError):
    """The platform's shop is already connected (to this merchant, or enabled for another)."""

    code = "shop_exists"
    http_status = 409


class InvalidMsgSecret(ApplicationError):
    code = "invalid_msg_secret"


class AllocationExceedsQuota(ApplicationError):
    code = "allocation_exceeds_quota"


class AllocationConflict(ApplicationError):
    """Allocated units that cannot move: sold units stay where they were sold, and the shared
    part gives only unsold units (``extra``: ``platform``, ``least``, ``most``)."""

    code = "allocation_conflict"
    http_status = 409
