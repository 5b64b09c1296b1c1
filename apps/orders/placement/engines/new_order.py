"""What the service hands an engine about the order to place, besides the listing and request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NewOrder:
    public_id: str
    idempotency_key: str | None
    fingerprint: str
    channel: str
    actor: str
