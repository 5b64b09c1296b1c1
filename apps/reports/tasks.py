"""django-q2 entry points of the reports."""

from __future__ import annotations

import logging

from .rollups import rollup_due

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
