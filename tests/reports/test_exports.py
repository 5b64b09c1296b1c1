"""Report exports: the XLSX, CSV and PDF of a show's report and the time slots hold exactly the
report's figures (money exact, Excel-safe text), the PDF has the show's numbers and its charts;
jobs count their sections, a finished job run again writes nothing, a job is claimed by one run
only (a task delivered twice writes one file), a job killed at the task timeout is failed when
read; tenant walls."""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.utils import timezone
from openpyxl import load_workbook

from apps.catalog.models import LiveSession, Product
from apps.reports import exports
from apps.reports.exports import Money, Rate, report_export_claim, report_export_run, report_export_write
from apps.reports.models import ReportExport, SessionReport
from apps.reports.rollups import rollup_session
from apps.reports.slots import slot_analysis

from ..backoffice.helpers import staff_client
from .test_session_report import make_history
from .test_slots import CN, show

pytestmark = pytest.mark.django_db
EVIL = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def report(merchant) -> SessionReport:  # type: ignore[no-untyped-def]
    session = make_history(merchant, seed=7, n_orders=60)
    LiveSession.objects.filter(pk=session.pk).update(streamer="小雅", title="双十二 美妆专场")
    first = session.listings.order_by("pk").first()
    Product.objects.filter(pk=first.sku.product_id).update(name=EVIL)  # a name that is a formula
    rollup_session(session.pk)
    return SessionReport.objects.select_related("session", "merchant").get(session_id=session.pk)


@pytest.fixture
def oncommit(django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """After-commit callbacks run (the export task is sent on commit; tests run tasks in-process)."""
    return django_capture_on_commit_callbacks


def export(client, url: str, fmt: str, oncommit, **extra: str) -> ReportExport:  # type: ignore[no-untyped-def]
    with oncommit(execute=True):
        r = client.post(url, {"format": fmt, **extra})
    assert r.status_code == 302, r.content
    job = ReportExport.objects.get(pk=int(r["Location"].rstrip("/").split("/")[-1]))
    assert r["Location"] == f"/reports/exports/{job.pk}/"
    return job


def download(client, job: ReportExport) -> bytes:  # type: ignore[no-untyped-def]
    page = client.get(f"/reports/exports/{job.pk}/")
    assert page.status_code == 200 and f'href="/reports/exports/{job.pk}/download/"' in page.content.decode()
    r = client.get(f"/reports/exports/{job.pk}/download/")
    assert r.status_code == 200 and "attachment" in r["Content-Disposition"]
    return b"".join(r.streaming_content)


def session_url(report: SessionReport) -> str:
    return f"/reports/sessions/{report.session_id}/export/"


def money(value: Any) -> Decimal:
    """A money cell read back (openpyxl gives a float or an int): exactly the figure's cents."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_the_xlsx_has_a_sheet_per_figure_group_equal_to_the_report(merchant, report, oncommit) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant)
    job = export(c, session_url(report), "xlsx", oncommit)
    job.refresh_from_db()
    assert job.status == "done" and job.steps_done == job.steps_total == 9 and job.percent == 100
    wb = load_workbook(io.BytesIO(download(c, job)))
    assert wb.sheetnames == [
        "Summary", "Orders by minute", "Listings", "Provinces", "Cities", "Channels", "Categories", "Buyers",
        "Risk control",
    ]  # fmt: skip
    f = report.figures
    summary = {row[0].value: row[1] for row in wb["Summary"].iter_rows(min_row=2)}
    assert summary["Show"].value == "双十二 美妆专场" and summary["Streamer"].value == "小雅"
    assert summary["Orders"].value == f["orders"] and summary["Paid"].value == f["paid"]
    assert money(summary["GMV (paid)"].value) == Decimal(f["gmv"]) and Decimal(f["gmv"]) > 0
    assert summary["GMV (paid)"].number_format == exports.MONEY_FORMAT
    assert money(summary["Net (GMV less refunds)"].value) == Decimal(f["net"])
    assert money(summary["Refunds owed"].value) == Decimal(f["refunds"]["amount"])
    assert Decimal(str(summary["Paid rate"].value)) == Decimal(f["rates"]["paid"])
    assert summary["Paid rate"].number_format == exports.RATE_FORMAT
    minutes = [[c.value for c in row] for row in wb["Orders by minute"].iter_rows(min_row=2)]
    assert [(m, o, p, money(g)) for m, o, p, g in minutes] == [
        (r["minute"], r["orders"], r["paid"], Decimal(r["gmv"])) for r in f["by_minute"]
    ]
    listings = [[c.value for c in row] for row in wb["Listings"].iter_rows(min_row=2)]
    assert [(r[0], r[4], r[5], r[6], r[7], r[9], r[11], money(r[12])) for r in listings] == [
        (
            li["sku"],
            li["quota"],
            li["orders"],
            li["attempts"],
            li["refused"]["sold_out"],
            li["paid"],
            li["units"],
            Decimal(li["gmv"]),
        )
        for li in f["listings"]
    ]
    assert listings[0][1] == "'" + EVIL  # shown as text, never run
    provinces = [[c.value for c in row] for row in wb["Provinces"].iter_rows(min_row=2)]
    assert [(p, n, money(g)) for p, n, g in provinces] == [
        ("No address" if r["province"] == "?" else r["province"], r["paid"], Decimal(r["gmv"])) for r in f["regions"]
    ]
    cities = [[c.value for c in row] for row in wb["Cities"].iter_rows(min_row=2)]
    assert sum(money(r[3]) for r in cities) == Decimal(f["gmv"])  # every paid order is in one city
    channels = [[c.value for c in row] for row in wb["Channels"].iter_rows(min_row=2)]
    assert sum(r[1] for r in channels) == f["orders"] and sum(money(r[3]) for r in channels) == Decimal(f["gmv"])
    buyers = {r[0].value: r[1].value for r in wb["Buyers"].iter_rows(min_row=2)}
    assert buyers["Buyers"] == f["buyers"]["buyers"] and buyers["Returning"] == f["buyers"]["returning"]
    risk = [r[1].value for r in wb["Risk control"].iter_rows(min_row=2)]
    assert risk == [f["risk"][k] for k in ("allowed", "held", "approved", "rejected", "blocked")]


def csv_sections(content: bytes) -> dict[str, list[list[str]]]:
    assert content.startswith("\ufeff".encode())  # the BOM: Excel opens UTF-8 Chinese correctly
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    out: dict[str, list[list[str]]] = {}
    while rows:
        end = rows.index([])
        out[rows[0][0]] = rows[1:end]  # title row, then header and rows
        rows = rows[end + 1 :]
    return out


def test_the_csv_is_one_file_of_titled_sections_equal_to_the_report(merchant, report, oncommit) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant)
    job = export(c, session_url(report), "csv", oncommit)
    sections = csv_sections(download(c, job))
    assert list(sections) == [
        "Summary", "Orders by minute", "Listings", "Provinces", "Cities", "Channels", "Categories", "Buyers",
        "Risk control",
    ]  # fmt: skip
    f = report.figures
    summary = dict(sections["Summary"][1:])
    assert summary["GMV (paid)"] == f["gmv"] and summary["Orders"] == str(f["orders"])
    assert summary["Paid rate"] == f"{(Decimal(f['rates']['paid']) * 100).quantize(Decimal('0.01'))}%"
    assert sections["Orders by minute"][0] == ["Minute since the start", "Orders", "Paid", "GMV (¥)"]
    assert sections["Orders by minute"][1:] == [
        [str(r["minute"]), str(r["orders"]), str(r["paid"]), r["gmv"]] for r in f["by_minute"]
    ]
    listings = sections["Listings"][1:]
    assert [(r[0], r[12]) for r in listings] == [(li["sku"], li["gmv"]) for li in f["listings"]]
    assert listings[0][1] == "'" + EVIL  # CSV injection: a formula is text
    assert [r[2] for r in sections["Channels"][1:]] == [str(ch["paid"]) for ch in f["channels"]]


def pdf_text(content: bytes) -> tuple[str, int, int]:
    """The PDF's text, its page count and how many vector paths (chart lines, bars, axes) it draws."""
    pdf = pdfium.PdfDocument(content)
    text, paths = "", 0
    for page in pdf:
        text += page.get_textpage().get_text_range()
        paths += sum(1 for _obj in page.get_objects(filter=[pdfium.raw.FPDF_PAGEOBJ_PATH], max_depth=5))
    return text, len(pdf), paths


def test_the_pdf_has_the_shows_numbers_and_its_charts(merchant, report, oncommit) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant)
    job = export(c, session_url(report), "pdf", oncommit)
    job.refresh_from_db()
    assert job.steps_done == job.steps_total == 7  # six parts and the page layout
    content = download(c, job)
    if os.environ.get("LC_EXPORT_PDF_TO"):  # to look at it: LC_EXPORT_PDF_TO=/tmp/report.pdf
        Path(os.environ["LC_EXPORT_PDF_TO"]).write_bytes(content)
    assert content.startswith(b"%PDF-") and b"WenQuanYiZenHei" in content  # the CJK font, embedded
    text, pages, paths = pdf_text(content)
    f = report.figures
    assert "双十二 美妆专场" in text and "小雅" in text  # Chinese as text, not boxes
    assert f"¥{Decimal(f['gmv']):,.2f}" in text and f"¥{Decimal(f['net']):,.2f}" in text
    for title in ("Orders by minute", "Listings: sell-through and conversion", "GMV by province", "GMV by channel"):
        assert title in text
    assert "Minutes since the show started" in text and "Seconds since the listing opened" in text  # axes
    assert all(f"¥{Decimal(ch['gmv']):,.2f}" in text for ch in f["channels"])  # bar labels / table
    # The listings table: quota, orders, attempts, conversion, paid, units, GMV, sold out after — its
    # columns picked by what they are, whatever the export's columns before them.
    assert "Units" in text and "GMV (¥)" in text and "Sold out" in text
    assert f["listings"] and all(li["units"] > 0 for li in f["listings"])
    for li in f["listings"]:
        conversion = "—" if li.get("conversion") is None else f"{Decimal(li['conversion']) * 100:.1f}%"
        sold_out = "—" if li["sold_out_s"] is None else f"{li['sold_out_s']:,.1f}"
        row = [li["quota"], li["orders"], li["attempts"], conversion, li["paid"], li["units"],
               f"¥{Decimal(li['gmv']):,.2f}", sold_out]  # fmt: skip
        assert " ".join(str(v) for v in row) in text, (row, text)
    assert paths > 60, paths  # the charts' lines, bars and grid are drawn
    assert pages >= 2
    empty = SessionReport.objects.create(
        session=LiveSession.objects.create(merchant=merchant, title="空场"), merchant=merchant,
        figures={**f, "by_minute": [], "listings": [], "regions": [], "channels": [], "categories": []},
    )  # fmt: skip
    bare, _pages, bare_paths = pdf_text(exports_pdf(empty))
    assert "No orders." in bare and "No listings in this show." in bare and bare_paths < paths


def exports_pdf(report: SessionReport) -> bytes:
    from apps.reports.pdf import report_pdf

    return report_pdf(report, progress=lambda done, total: None)


def test_a_job_counts_its_sections_and_a_finished_job_is_not_written_again(merchant, report) -> None:  # type: ignore[no-untyped-def]
    job = ReportExport.objects.create(merchant=merchant, kind="session", session=report.session, format="xlsx")
    seen: list[tuple[int, int]] = []
    exports.job_content(job, lambda done, total: seen.append((done, total)))
    assert seen == [(i, 9) for i in range(10)]  # the bar moves a section at a time
    done = report_export_run(job)
    assert done.status == "done" and done.file and done.finished_at
    store = storages["exports"]
    before = sorted(store.listdir("")[1])
    again = report_export_run(ReportExport.objects.get(pk=job.pk))  # the task retried
    assert again.file == done.file and sorted(store.listdir("")[1]) == before


def stored() -> set[str]:
    """The files in the exports storage (kept across tests: compare before and after)."""
    store = storages["exports"]
    return set(store.listdir("")[1]) if store.exists("") else set()


def test_a_job_is_claimed_once_and_a_second_run_writes_nothing(merchant, report) -> None:  # type: ignore[no-untyped-def]
    job = ReportExport.objects.create(merchant=merchant, kind="session", session=report.session, format="csv")
    before = stored()
    assert report_export_claim(job) and not report_export_claim(job)  # queued → running, once
    again = report_export_run(ReportExport.objects.get(pk=job.pk))  # the task delivered again meanwhile
    assert again.status == "running" and not again.file and stored() == before
    done = report_export_write(job)  # the first run finishes
    assert done.status == "done" and stored() - before == {done.file}
    assert report_export_run(done).file == done.file and stored() - before == {done.file}


@pytest.mark.django_db(transaction=True)
def test_a_task_delivered_many_times_at_once_writes_one_file(merchant, report, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from apps.reports.tasks import export_report

    from ..fulfilment.test_refunds_concurrency import together

    built: list[int] = []  # list.append is atomic: the runs that built the file
    content = exports.job_content
    monkeypatch.setattr(exports, "job_content", lambda job, progress: built.append(job.pk) or content(job, progress))
    job = ReportExport.objects.create(merchant=merchant, kind="session", session=report.session, format="xlsx")
    before = stored()
    results = together(4, lambda _i: export_report(job.pk))
    assert results == [None] * 4, results
    assert built == [job.pk]  # one run won the claim; the others returned without building anything
    job.refresh_from_db()
    assert job.status == "done" and stored() - before == {job.file}
    assert job.steps_done == job.steps_total == 9


def test_a_job_killed_at_the_task_timeout_is_failed_when_read(merchant, report, oncommit) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant)
    job = export(c, session_url(report), "csv", oncommit)  # done
    before = stored()
    limit = timedelta(seconds=settings.Q_CLUSTER["timeout"])
    old = timezone.now() - limit - timedelta(seconds=1)
    ReportExport.objects.filter(pk=job.pk).update(created_at=old)
    assert c.get(f"/reports/exports/{job.pk}/progress/").json()["status"] == "done"  # a done job stays done
    running = ReportExport.objects.create(
        merchant=merchant, kind="session", session=report.session, format="pdf", language="en"
    )
    ReportExport.objects.filter(pk=running.pk).update(created_at=old)  # it waited long in the queue...
    assert report_export_claim(running)
    assert c.get(f"/reports/exports/{running.pk}/progress/").json()["status"] == "running"  # ...which does not count
    ReportExport.objects.filter(pk=running.pk).update(started_at=timezone.now() - limit + timedelta(seconds=5))
    assert c.get(f"/reports/exports/{running.pk}/progress/").json()["status"] == "running"  # not yet too old
    ReportExport.objects.filter(pk=running.pk).update(started_at=old)
    state = c.get(f"/reports/exports/{running.pk}/progress/").json()
    assert state["status"] == "failed" and state["error"] == "This export took too long; try again."
    assert state["download_url"] == ""
    page = c.get(f"/reports/exports/{running.pk}/").content.decode()
    again = f'action="/reports/sessions/{report.session_id}/export/"'
    assert again in page and 'name="format" value="pdf"' in page and "http-equiv" not in page  # no more refreshing
    # Its worker, had it lived, finds the job failed: nothing is kept.
    failed = report_export_write(ReportExport.objects.get(pk=running.pk))
    assert failed.status == "failed" and not failed.file and stored() == before
    queued = ReportExport.objects.create(merchant=merchant, kind="slots", format="csv")
    ReportExport.objects.filter(pk=queued.pk).update(created_at=old)
    assert c.get(f"/reports/exports/{queued.pk}/progress/").json()["status"] == "queued"  # only a running job


def test_an_export_fails_clearly_when_the_report_is_gone(merchant, report) -> None:  # type: ignore[no-untyped-def]
    job = ReportExport.objects.create(
        merchant=merchant, kind="session", session=report.session, format="csv", language="en"
    )
    SessionReport.objects.filter(pk=report.pk).delete()
    failed = report_export_run(job)
    assert failed.status == "failed" and "try again in a minute" in failed.error and not failed.file


def test_the_pages_offer_the_exports_and_refuse_bad_asks(merchant, report) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant)
    page = c.get(f"/reports/sessions/{report.session_id}/").content.decode()
    assert all(f'value="{fmt}"' in page for fmt in ("csv", "xlsx", "pdf"))
    slots = c.get("/reports/slots/").content.decode()
    assert 'action="/reports/slots/export/"' in slots and 'value="pdf"' not in slots
    for fmt in ("", "docx", "PDF"):
        r = c.post(session_url(report), {"format": fmt})
        assert r.status_code == 400 and b"Choose one of: CSV, XLSX, PDF." in r.content
    assert c.post("/reports/slots/export/", {"format": "pdf"}).status_code == 400  # no PDF of the slots
    assert c.get(session_url(report)).status_code == 405
    not_ready = LiveSession.objects.create(merchant=merchant, title="还没算")
    r = c.post(f"/reports/sessions/{not_ready.pk}/export/", {"format": "pdf"})
    assert r.status_code == 409 and b"not computed yet" in r.content
    assert not ReportExport.objects.exists()


def test_other_shops_reports_and_jobs_are_walled(merchant, other_merchant, report, oncommit) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = staff_client(merchant), staff_client(other_merchant, name="rival")
    job = export(mine, session_url(report), "csv", oncommit)
    for path in ("", "progress/", "download/"):
        assert theirs.get(f"/reports/exports/{job.pk}/{path}").status_code == 404, path
    assert theirs.get(f"/reports/exports/{job.pk}/progress/").json()["code"] == "not_found"
    assert theirs.post(session_url(report), {"format": "csv"}).status_code == 404  # their show is no show
    r = theirs.post("/reports/slots/export/", {"format": "csv", "merchant": merchant.pk})
    assert r.status_code == 404  # another shop's slots
    assert ReportExport.objects.count() == 1
    state = mine.get(f"/reports/exports/{job.pk}/progress/").json()
    assert state["status"] == "done" and state["percent"] == 100
    assert state["download_url"] == f"/reports/exports/{job.pk}/download/"


def test_the_time_slots_export_equals_the_analysis(merchant, other_merchant, oncommit) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime

    for week in range(3):
        show(merchant, datetime(2026, 10, 3 + 7 * week, 20, 0, tzinfo=CN), "1.5", [(10, 5, "500.10")], streamer="A")
    show(merchant, datetime(2026, 10, 6, 9, 0, tzinfo=CN), "1", [(5, 9, "5000.00")], streamer=EVIL)
    show(other_merchant, datetime(2026, 10, 6, 9, 0, tzinfo=CN), "1", [(5, 1, "1.00")])
    result = slot_analysis(merchant_id=merchant.pk)
    c = staff_client(merchant)
    wb = load_workbook(io.BytesIO(download(c, export(c, "/reports/slots/export/", "xlsx", oncommit))))
    assert wb.sheetnames == ["Recommended slots", "Weekday × hour", "Streamers", "Categories"]
    cells = [[c.value for c in row] for row in wb["Weekday × hour"].iter_rows(min_row=2)]
    assert [(r[2], money(r[6]), money(r[7]), Decimal(str(r[8]))) for r in cells] == [
        (x["shows"], Decimal(x["gmv"]), Decimal(x["gmv_per_hour"]), Decimal(x["conversion"])) for x in result["cells"]
    ]
    rec = [[c.value for c in row] for row in wb["Recommended slots"].iter_rows(min_row=2)]
    assert [(r[0], r[1], r[2]) for r in rec] == [("Sat", "20:00–21:00", 3), ("Sat", "21:00–22:00", 3)]
    assert [money(r[7]) for r in rec] == [Decimal(x["gmv_per_hour"]) for x in result["recommended"]]
    streamers = [r[0].value for r in wb["Streamers"].iter_rows(min_row=2)]
    assert streamers == ["'" + EVIL, "A"]
    sections = csv_sections(download(c, export(c, "/reports/slots/export/", "csv", oncommit)))
    assert sections["Recommended slots"][1][:3] == ["Sat", "20:00–21:00", "3"]
    assert sections["Streamers"][1][0] == "'" + EVIL
    assert sum(Decimal(r[6]) for r in sections["Weekday × hour"][1:]) == Decimal("6500.30")


def test_cells_are_typed_and_money_is_never_a_float() -> None:
    assert exports._csv_cell(Money("1234.5")) == "1234.50" and exports._csv_cell(Rate("0.8125")) == "81.25%"
    assert exports._csv_cell("-1") == "'-1" and exports._csv_cell(None) == "" and exports._csv_cell(3) == 3
    assert exports.sheet_title("a/b:c", set()) == "a b c"
    used: set[str] = set()
    assert [exports.sheet_title("x" * 40, used) for _ in range(2)] == ["x" * 31, "x" * 29 + " 2"]
