"""What the service hands an engine about the order to place, besides the listing and request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NewOrder:
    public_id: str
    idempotency_key: str | None
    fingerprint: str
    channel: str
    actor: str
    pay_window_seconds: int | None = None  # None: the listing's payment window
    signals: dict[str, Any] | None = None  # the order's OrderSignals row (JSON-ready); None: none

    def signals_json(self) -> str | None:
        return None if self.signals is None else json.dumps(self.signals, ensure_ascii=False)
