"""django-q2 entry points of the reports."""

from __future__ import annotations

from .rollups import rollup_due


def rollup_minute() -> int:
    return rollup_due()
