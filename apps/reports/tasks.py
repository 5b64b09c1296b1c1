"""django-q2 entry points of the reports."""

from __future__ import annotations

import logging
from typing import Any

from .rollups import rollup_due
from .suggestions import backtest_compute

log = logging.getLogger(__name__)


def rollup_minute() -> int:
    return rollup_due()


def export_report(job_id: int) -> None:
    """Build a report export job's file (``exports.report_export_run``)."""
    from .exports import report_export_run
    from .models import ReportExport

    job = ReportExport.objects.filter(pk=job_id).first()
    if job is None:
        log.warning("report export job vanished", extra={"job": job_id})
        return
    report_export_run(job)


def suggestion_backtest(merchant_id: int) -> dict[str, Any]:
    """The forecast's and its suggestions' backtest, kept for the suggestions page and API."""
    return backtest_compute(merchant_id)
