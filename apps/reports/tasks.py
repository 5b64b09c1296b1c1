"""django-q2 entry points of the reports."""

from __future__ import annotations

from typing import Any

from .rollups import rollup_due
from .suggestions import backtest_compute


def rollup_minute() -> int:
    return rollup_due()


def suggestion_backtest(merchant_id: int) -> dict[str, Any]:
    """The forecast's and its suggestions' backtest, kept for the suggestions page and API."""
    return backtest_compute(merchant_id)
