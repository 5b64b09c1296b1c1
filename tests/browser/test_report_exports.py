"""Report exports in real headless Chromium: export a show's report as PDF from its page, the job
page's bar reaches done and the link downloads the PDF; a job still running is polled until it is
done (the bar moves without a reload); a job whose worker was killed at the task timeout turns
failed while its page polls and the page offers the same export again. Laptop and phone. Screenshots:
test-artifacts/screenshots/report-export-*."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from apps.catalog.models import LiveSession
from apps.merchants import services as merchants
from apps.reports.exports import report_export_claim, report_export_write
from apps.reports.models import ReportExport
from apps.reports.rollups import rollup_session

from ..reports.test_session_report import make_history
from .conftest import shot
from .test_reports import SIZES, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_export_a_report_as_pdf_and_download_it(new_page, live_url, merchant, size, tmp_path: Path):  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed=43, n_orders=80)
    LiveSession.objects.filter(pk=session.pk).update(title="年货节专场", streamer="小雅")
    report = rollup_session(session.pk)
    assert report is not None
    merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    page = new_page(locale="zh-CN", viewport=SIZES[size], mobile=size == "phone")
    login(page)
    page.goto(f"/reports/sessions/{session.pk}/")
    expect(page.locator(".export-form button")).to_have_count(3)
    shot(page, f"report-export-buttons-zh-{size}")
    page.click(".export-form button[value=pdf]")
    expect(page).to_have_url(f"{live_url}/reports/exports/{ReportExport.objects.get().pk}/")
    expect(page.locator(".export-job")).to_have_attribute("data-status", "done")
    expect(page.locator("progress.export-progress")).to_have_attribute("value", "100")
    expect(page.locator(".export-job")).to_contain_text("已完成")
    shot(page, f"report-export-done-zh-{size}")
    with page.expect_download() as download:
        page.click("[data-field=download_url]")
    saved = tmp_path / "report.pdf"
    download.value.save_as(saved)
    assert download.value.suggested_filename == f"report-show-{session.pk}.pdf"
    assert saved.read_bytes().startswith(b"%PDF-") and b"WenQuanYiZenHei" in saved.read_bytes()
    assert not page.errors, page.errors


def test_a_running_job_is_polled_until_done(new_page, live_url, merchant):  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed=44, n_orders=20)
    rollup_session(session.pk)
    staff = merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    job = ReportExport.objects.create(
        merchant=merchant, user=staff, kind="session", session=session, format="xlsx", language="en"
    )  # fmt: skip
    assert report_export_claim(job)  # a worker took it...
    ReportExport.objects.filter(pk=job.pk).update(steps_done=3, steps_total=9)  # ...and is at 3 of 9 sections
    page = new_page(locale="en-US", viewport=SIZES["laptop"])
    login(page)
    page.goto(f"/reports/exports/{job.pk}/")
    expect(page.locator("progress.export-progress")).to_have_attribute("value", "33")
    expect(page.locator("[data-field=rows_done]")).to_have_text("3")
    expect(page.locator(".export-download")).to_be_hidden()
    shot(page, "report-export-running-en-laptop")
    report_export_write(job)  # the worker finishes it
    expect(page.locator("progress.export-progress")).to_have_attribute("value", "100")
    expect(page.locator("[data-field=rows_done]")).to_have_text("9")
    expect(page.locator(".export-download")).to_be_visible()
    assert page.url.endswith(f"/reports/exports/{job.pk}/")  # no reload: the script polled
    assert not page.errors, page.errors


@pytest.mark.parametrize("size", ["laptop", "phone"])
def test_a_job_killed_at_the_task_timeout_fails_and_offers_the_export_again(new_page, live_url, merchant, size):  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed=45, n_orders=20)
    LiveSession.objects.filter(pk=session.pk).update(title="年货节专场")
    rollup_session(session.pk)
    staff = merchants.staff_create(merchant=merchant, username="analyst", password="pw-123456789")
    job = ReportExport.objects.create(
        merchant=merchant, user=staff, kind="session", session=session, format="csv", language="en"
    )  # fmt: skip
    assert report_export_claim(job)
    ReportExport.objects.filter(pk=job.pk).update(steps_done=2, steps_total=9)
    page = new_page(locale="en-US", viewport=SIZES[size], mobile=size == "phone")
    login(page)
    page.goto(f"/reports/exports/{job.pk}/")
    expect(page.locator(".export-job")).to_have_attribute("data-status", "running")
    expect(page.locator(".export-again")).to_be_hidden()
    # Its worker is killed at the timeout: the job stays "running" until its page, polling, sees it too old.
    too_old = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 1)
    ReportExport.objects.filter(pk=job.pk).update(started_at=too_old)
    expect(page.locator(".export-job")).to_have_attribute("data-status", "failed")
    expect(page.locator("[data-field=error]")).to_have_text("This export took too long; try again.")
    expect(page.locator(".export-again button")).to_be_visible()
    shot(page, f"report-export-too-long-en-{size}")
    page.click(".export-again button")  # the same export, a new job (tasks run in-process here)
    again = ReportExport.objects.exclude(pk=job.pk).get()
    expect(page).to_have_url(f"{live_url}/reports/exports/{again.pk}/")
    expect(page.locator(".export-job")).to_have_attribute("data-status", "done")
    assert again.format == "csv" and again.session_id == session.pk
    assert ReportExport.objects.get(pk=job.pk).status == "failed"
    assert not page.errors, page.errors
