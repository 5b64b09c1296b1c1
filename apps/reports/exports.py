"""Report exports: a show's post-show report as CSV, XLSX or PDF (with its charts), and the time-slot
analysis as CSV or XLSX, written by a :class:`~apps.reports.models.ReportExport` job.

Every export is a list of :class:`Section` (a titled table) built from the rollups only (the
report's ``figures``, :func:`apps.reports.slots.slot_analysis`), so a file says exactly what the
page says. Cells are typed: :class:`Money` (exact ``Decimal``), :class:`Rate` (a share, 0-1),
``int``, ``float`` (seconds) and text.

- **XLSX**: one sheet per section (summary, orders by minute, listings, provinces, cities,
  channels, categories, buyers, risk control), a bold frozen header row. Money cells are numbers
  (written from the ``Decimal``, never through a float) formatted ``¥#,##0.00``; rates are numbers
  formatted as percentages. This is the file to open in Excel.
- **CSV**: one file (UTF-8 with a BOM, for Excel in China) with every section one after another:
  a title row, a header row, the rows, a blank row. Money as ``1234.50``, rates as ``81.25%``
  (Excel reads both as numbers). One file rather than a zip of files: it opens with a double click.
- **PDF** (show report only): A4, the headline figures, the charts drawn server-side with
  ``reportlab.graphics`` (orders by minute, sell-through per listing, GMV by province, GMV by
  channel) and the tables, set in the CJK font of the shipping labels (:mod:`apps.core.fonts`).

Text cells go through :func:`apps.core.spreadsheets.safe_cell` (CSV injection): a product or
streamer named ``=HYPERLINK(…)`` is shown, never run.

:func:`report_export_run` claims a job (a conditional UPDATE: queued → running, so a task
delivered twice writes one file), builds its file, counting the sections written as its progress,
and saves it under an unguessable name in ``storages["exports"]`` (as the order exports do).
:func:`report_export_expire` fails a job still "running" past the task timeout (its worker was
killed), when its page or progress is read, so the page stops polling and offers a new export."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.spreadsheets import safe_cell

from .models import ReportExport, SessionReport
from .slots import WEEKDAYS, slot_analysis

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
MONEY_FORMAT = '"¥"#,##0.00'
RATE_FORMAT = "0.00%"
SHEET_TITLE_MAX = 31  # Excel's limit
SHEET_TITLE_BAD = str.maketrans({c: " " for c in "[]:*?/\\"})


class Money(Decimal):
    """An amount in yuan, exact."""


class Rate(Decimal):
    """A share between 0 and 1 (shown as a percentage)."""


Cell = Money | Rate | Decimal | int | float | str | None


@dataclass(frozen=True)
class Section:
    """A titled table. ``columns``, where given, names each column by what it holds (one key per
    header), so a reader that shows some of them picks them by name, never by position."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.columns and len(self.columns) != len(self.headers):
            raise ValueError(f"section {self.key}: {len(self.columns)} column keys for {len(self.headers)} headers")

    def pick(self, *keys: str) -> Section:
        """The same table with only the columns ``keys``, in that order (KeyError: no such column)."""
        missing = [k for k in keys if k not in self.columns]
        if missing:
            raise KeyError(f"section {self.key} has no column {missing[0]!r}")
        at = [self.columns.index(k) for k in keys]
        return Section(self.key, self.title, [self.headers[i] for i in at], [[r[i] for i in at] for r in self.rows],
                       keys)  # fmt: skip


class ReportNotReady(Exception):
    """The show's report is not computed yet (nothing to export)."""


# --- sections --------------------------------------------------------------------------------


def _money(value: Any) -> Money:
    return Money(str(value))


def _rate(value: Any) -> Rate:
    return Rate(str(value))


def _place(name: str) -> str:
    return _("No address") if name == "?" else name


CHANNEL_NAMES = {
    "storefront": gettext_lazy("Storefront"),
    "api": gettext_lazy("API"),
    "douyin": gettext_lazy("Douyin"),
    "kuaishou": gettext_lazy("Kuaishou"),
    "taobao": gettext_lazy("Taobao"),
}


def channel_name(channel: str) -> str:
    """A channel's name for people, in the current language (an unknown code as it is)."""
    return str(CHANNEL_NAMES.get(channel, channel))


def channel_names() -> dict[str, str]:
    """Every channel's name, in the current language (for a page's script)."""
    return {code: str(name) for code, name in CHANNEL_NAMES.items()}


def _local(dt: Any) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M") if dt else ""


def summary_rows(report: SessionReport) -> list[list[Cell]]:
    f = report.figures
    session = report.session
    return [
        [_("Show"), session.title],
        [_("Shop"), report.merchant.name],
        [_("Streamer"), report.streamer],
        [_("Started"), _local(report.starts_at)],
        [_("Hours on air"), Decimal(report.hours_on_air)],
        [_("Orders"), f["orders"]],
        [_("Paid"), f["paid"]],
        [_("Paid rate"), _rate(f["rates"]["paid"])],
        [_("Awaiting payment"), f["pending"]],
        [_("Cancelled"), f["cancelled"]],
        [_("Cancelled rate"), _rate(f["rates"]["cancelled"])],
        [_("Not paid in time"), f["expired"]],
        [_("Not paid in time rate"), _rate(f["rates"]["expired"])],
        [_("Units"), f["units"]],
        [_("GMV (paid)"), _money(f["gmv"])],
        [_("Average basket"), _money(f["avg_basket"])],
        [_("Refund orders"), f["refunds"]["orders"]],
        [_("Refund rate"), _rate(f["rates"]["refund"])],
        [_("Refunds owed"), _money(f["refunds"]["amount"])],
        [_("Refunds paid back"), _money(f["refunds"]["paid_back"])],
        [_("Net (GMV less refunds)"), _money(f["net"])],
        [_("Figures as of"), _local(report.computed_at)],
    ]


def session_sections(report: SessionReport) -> list[Section]:
    """The show report's tables, in the page's order."""
    f = report.figures
    figure, value = _("Figure"), _("Value")
    orders, paid, gmv, units = _("Orders"), _("Paid"), _("GMV (¥)"), _("Units")
    return [
        Section("summary", _("Summary"), [figure, value], summary_rows(report)),
        Section(
            "minutes",
            _("Orders by minute"),
            [_("Minute since the start"), orders, paid, gmv],
            [[m["minute"], m["orders"], m["paid"], _money(m["gmv"])] for m in f["by_minute"]],
        ),
        listings_section(f["listings"], orders=orders, paid=paid, units=units, gmv=gmv),
        Section(
            "provinces",
            _("Provinces"),
            [_("Province"), paid, gmv],
            [[_place(r["province"]), r["paid"], _money(r["gmv"])] for r in f["regions"]],
        ),
        Section(
            "cities",
            _("Cities"),
            [_("Province"), _("City"), paid, gmv],
            [
                [_place(r["province"]), _place(c["city"]), c["paid"], _money(c["gmv"])]
                for r in f["regions"]
                for c in r["cities"]
            ],
        ),
        Section(
            "channels",
            _("Channels"),
            [_("Channel"), orders, paid, gmv],
            [[channel_name(c["channel"]), c["orders"], c["paid"], _money(c["gmv"])] for c in f["channels"]],
        ),
        Section(
            "categories",
            _("Categories"),
            [_("Category"), orders, paid, units, gmv],
            [[c["category"] or "—", c["orders"], c["paid"], c["units"], _money(c["gmv"])] for c in f["categories"]],
        ),
        Section(
            "buyers",
            _("Buyers"),
            [figure, value],
            [
                [_("Buyers"), f["buyers"]["buyers"]],
                [_("New"), f["buyers"]["new"]],
                [_("Returning"), f["buyers"]["returning"]],
                [_("Paid twice or more in this show"), f["buyers"]["repeat"]],
                [_("Repeat rate"), _rate(f["buyers"]["repeat_rate"])],
            ],
        ),
        Section("risk", _("Risk control"), [figure, value], risk_rows(f)),
    ]


def listings_section(listings: list[dict[str, Any]], *, orders: str, paid: str, units: str, gmv: str) -> Section:
    """The listings table: a key, a header and a cell per column (the PDF shows some of them)."""
    columns: list[tuple[str, str, Callable[[dict[str, Any]], Cell]]] = [
        ("sku", _("SKU code"), lambda li: li["sku"]),
        ("item", _("Item"), lambda li: li["name"]),
        ("category", _("Category"), lambda li: li["category"]),
        ("price", _("Flash price (¥)"), lambda li: _money(li["price"])),
        ("quota", _("Quota"), lambda li: li["quota"]),
        ("orders", orders, lambda li: li["orders"]),
        ("attempts", _("Attempts"), lambda li: li.get("attempts")),
        ("refused_sold_out", _("Refused: sold out"), lambda li: (li.get("refused") or {}).get("sold_out")),
        ("conversion", _("Conversion"),
         lambda li: _rate(li["conversion"]) if li.get("conversion") is not None else None),
        ("paid", paid, lambda li: li["paid"]),
        ("paid_rate", _("Paid rate"), lambda li: _rate(li["paid_rate"])),
        ("units", units, lambda li: li["units"]),
        ("gmv", gmv, lambda li: _money(li["gmv"])),
        ("sold_out_s", _("Sold out after (s)"), lambda li: li["sold_out_s"]),
    ]  # fmt: skip
    return Section(
        "listings",
        _("Listings"),
        [header for _key, header, _cell in columns],
        [[cell(li) for _key, _header, cell in columns] for li in listings],
        tuple(key for key, _header, _cell in columns),
    )


def risk_rows(figures: dict[str, Any]) -> list[list[Cell]]:
    r = figures["risk"]
    return [
        [_("Let through"), r["allowed"]],
        [_("Held for review"), r["held"]],
        [_("Approved on review"), r["approved"]],
        [_("Rejected on review"), r["rejected"]],
        [_("Attempts blocked"), r["blocked"]],
    ]


def slot_sections(result: dict[str, Any]) -> list[Section]:
    """The time-slot analysis' tables: recommended slots, every weekday × hour cell, streamers,
    categories."""
    common = [_("Shows"), _("Hours on air"), _("Orders"), _("Paid"), _("GMV (¥)"), _("GMV per hour (¥)"),
              _("Conversion")]  # fmt: skip

    def figures(c: dict[str, Any]) -> list[Cell]:
        return [c["shows"], Decimal(c["hours_on_air"]), c["orders"], c["paid"], _money(c["gmv"]),
                _money(c["gmv_per_hour"]), _rate(c["conversion"])]  # fmt: skip

    def slot(c: dict[str, Any]) -> list[Cell]:
        return [str(WEEKDAYS[c["weekday"]]), f"{c['hour']:02d}:00–{c['hour'] + 1:02d}:00", *figures(c)]

    when = [_("Weekday"), _("Hour")]
    return [
        Section("recommended", _("Recommended slots"), when + common, [slot(c) for c in result["recommended"]]),
        Section("slots", _("Weekday × hour"), when + common, [slot(c) for c in result["cells"]]),
        Section(
            "streamers",
            _("Streamers"),
            [_("Streamer"), *common, _("Units")],
            [[s["streamer"], *figures(s), s["units"]] for s in result["streamers"]],
        ),
        Section(
            "categories",
            _("Categories"),
            [_("Category"), *common, _("Units")],
            [[c["category"], *figures(c), c["units"]] for c in result["categories"]],
        ),
    ]


# --- writers ---------------------------------------------------------------------------------

Progress = Callable[[int], None]  # called with the number of sections written so far


def cell_text(value: Cell, *, percent_places: str = "0.01", yuan: str = "", thousands: str = "", none: str = "") -> Any:
    """A cell as text: a rate as a percentage, money with 2 places (``yuan`` before it, ``thousands``
    the grouping: "" or ","); other values as they are (CSV) or as text (PDF)."""
    if isinstance(value, Rate):
        return f"{(value * 100).quantize(Decimal(percent_places))}%"
    if isinstance(value, Money):
        return f"{yuan}{value:{thousands}.2f}"
    if value is None:
        return none
    return value


def _csv_cell(value: Cell) -> Any:
    return safe_cell(cell_text(value))


def write_csv(sections: Sequence[Section], progress: Progress | None = None) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    for i, section in enumerate(sections, start=1):
        w.writerow([safe_cell(section.title)])
        w.writerow([safe_cell(h) for h in section.headers])
        for row in section.rows:
            w.writerow([_csv_cell(v) for v in row])
        w.writerow([])
        if progress is not None:
            progress(i)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _width(value: object) -> int:
    """Columns a text takes in a spreadsheet: a CJK (wide) character counts two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(value))


def sheet_title(title: str, used: set[str]) -> str:
    name = title.translate(SHEET_TITLE_BAD).strip()[:SHEET_TITLE_MAX] or "Sheet"
    base, n = name, 2
    while name.lower() in used:
        suffix = f" {n}"
        name, n = base[: SHEET_TITLE_MAX - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def write_xlsx(sections: Sequence[Section], progress: Progress | None = None, *, title: str = "") -> bytes:
    from openpyxl import Workbook  # imported here: only exports need it
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    first = wb.active
    assert first is not None  # a new workbook always has its first sheet
    wb.remove(first)
    bold = Font(bold=True)
    used: set[str] = set()
    for i, section in enumerate(sections, start=1):
        ws = wb.create_sheet(sheet_title(section.title, used))
        ws.append([safe_cell(h) for h in section.headers])
        for cell in ws[1]:
            cell.font = bold
        for row in section.rows:
            ws.append([safe_cell(v) for v in row])
            for cell, value in zip(ws[ws.max_row], row, strict=True):
                if isinstance(value, Money):
                    cell.number_format = MONEY_FORMAT
                elif isinstance(value, Rate):
                    cell.number_format = RATE_FORMAT
        for col, header in enumerate(section.headers, start=1):
            widest = max([_width(header), *(_width(r[col - 1]) + 3 for r in section.rows)])
            ws.column_dimensions[get_column_letter(col)].width = min(max(widest + 2, 8), 48)
        ws.freeze_panes = "A2"
        if progress is not None:
            progress(i)
    wb.properties.title = title
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- jobs ------------------------------------------------------------------------------------


def export_filename(job: ReportExport) -> str:
    if job.kind == ReportExport.Kind.SESSION:
        return f"report-show-{job.session_id}.{job.format}"
    return f"time-slots-{job.merchant_id}.{job.format}"


def job_report(job: ReportExport) -> SessionReport:
    report = (
        SessionReport.objects.select_related("session", "merchant")
        .filter(session_id=job.session_id, merchant_id=job.merchant_id)
        .first()
    )
    if report is None:
        raise ReportNotReady(_("This show's report is being computed; try again in a minute."))
    return report


def job_content(job: ReportExport, progress: Callable[[int, int], None]) -> bytes:
    """A job's file; ``progress(done, total)`` after each section."""
    if job.kind == ReportExport.Kind.SLOTS:
        sections = slot_sections(slot_analysis(merchant_id=job.merchant_id))
        title = _("Time slots")
    else:
        report = job_report(job)
        if job.format == ReportExport.Format.PDF:
            from .pdf import report_pdf  # reportlab's charts: loaded only for a PDF

            return report_pdf(report, progress=progress)
        sections = session_sections(report)
        title = report.session.title

    def step(done: int) -> None:
        progress(done, len(sections))

    progress(0, len(sections))
    if job.format == ReportExport.Format.XLSX:
        return write_xlsx(sections, step, title=title)
    return write_csv(sections, step)


def report_export_claim(job: ReportExport) -> bool:
    """Take a queued job for this run: a conditional UPDATE (queued → running), so of two runs of
    the same task (a redelivery, a retry) exactly one wins; the other finds it taken."""
    jobs = ReportExport.objects.filter(pk=job.pk, status=ReportExport.Status.QUEUED)
    return bool(jobs.update(status=ReportExport.Status.RUNNING, steps_done=0, error="", started_at=timezone.now()))


def report_export_write(job: ReportExport) -> ReportExport:
    """Build a claimed job's file, saving its progress (sections written) as it goes. Every write
    is conditional on the job still running: one failed meanwhile (too old, see
    :func:`report_export_expire`) stays failed and its file is not kept."""
    jobs = ReportExport.objects.filter(pk=job.pk, status=ReportExport.Status.RUNNING)

    def progress(done: int, total: int) -> None:
        jobs.update(steps_done=done, steps_total=total)

    try:
        with translation.override(job.language):
            content = job_content(job, progress)
        # An unguessable name: the file is fetched through the job's tenant-walled download view.
        name = storages["exports"].save(f"report-{job.pk}-{secrets.token_hex(16)}.{job.format}", ContentFile(content))
    except Exception as exc:
        with translation.override(job.language):
            message = (
                str(exc)
                if isinstance(exc, ReportNotReady)
                else _("The export failed: %(error)s") % {"error": type(exc).__name__}
            )
        jobs.update(status=ReportExport.Status.FAILED, error=message[:200], finished_at=timezone.now())
        if isinstance(exc, ReportNotReady):
            job.refresh_from_db()
            return job
        raise
    done = jobs.update(
        status=ReportExport.Status.DONE, file=name, steps_done=F("steps_total"), finished_at=timezone.now()
    )  # the bar ends full
    if not done:  # failed meanwhile: its file is not kept (nobody could download it)
        storages["exports"].delete(name)
    job.refresh_from_db()
    return job


def report_export_run(job: ReportExport) -> ReportExport:
    """Claim ``job`` and build its file. A job that is not queued (done, failed, or being written
    by another run) is left alone: a task delivered twice writes one file."""
    if not report_export_claim(job):
        job.refresh_from_db()
        return job
    return report_export_write(job)


def task_timeout() -> timedelta | None:
    """How long django-q lets a task run before it kills it (``Q_CLUSTER["timeout"]``; None: no limit)."""
    seconds = settings.Q_CLUSTER.get("timeout")
    return timedelta(seconds=seconds) if isinstance(seconds, int | float) and seconds > 0 else None


def report_export_expire(job: ReportExport, *, now: datetime | None = None) -> ReportExport:
    """A job still running longer than the task timeout was killed (the worker timed out or died):
    fail it, conditionally (a job that finished meanwhile is left done), so that its page stops
    polling and offers a new export. Its age is counted from when its run claimed it (the time it
    waited in the queue does not count)."""
    limit = task_timeout()
    now = now or timezone.now()
    started = job.started_at or job.created_at
    if job.status != ReportExport.Status.RUNNING or limit is None or started > now - limit:
        return job
    with translation.override(job.language):
        message = _("This export took too long; try again.")
    ReportExport.objects.filter(pk=job.pk, status=ReportExport.Status.RUNNING).update(
        status=ReportExport.Status.FAILED, error=message, finished_at=now
    )
    job.refresh_from_db()
    return job


def rows_of(sections: Iterable[Section], key: str) -> list[list[Cell]]:
    """One section's rows (the PDF and the tests read tables by key)."""
    return next(s.rows for s in sections if s.key == key)


FORMATS: dict[str, tuple[str, ...]] = {
    ReportExport.Kind.SESSION: (ReportExport.Format.CSV, ReportExport.Format.XLSX, ReportExport.Format.PDF),
    ReportExport.Kind.SLOTS: (ReportExport.Format.CSV, ReportExport.Format.XLSX),
}


def report_export_create(
    *, merchant_id: int, user_id: int | None, kind: str, fmt: str, session_id: int | None = None
) -> ReportExport:
    """A queued export job (``fmt`` one of ``FORMATS[kind]``, checked by the caller), its task
    sent after the transaction commits. The file is written in the current language."""
    from django.db import transaction
    from django_q.tasks import async_task

    with transaction.atomic():
        job = ReportExport.objects.create(
            merchant_id=merchant_id,
            user_id=user_id,
            kind=kind,
            session_id=session_id,
            format=fmt,
            language=translation.get_language() or settings.LANGUAGE_CODE,
        )
        transaction.on_commit(lambda: async_task("apps.reports.tasks.export_report", job.pk))
    return job


def job_state(job: ReportExport, download_url: str) -> dict[str, Any]:
    """What the job page's script polls."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "rows_done": job.steps_done,
        "rows_total": job.steps_total,
        "percent": job.percent,
        "error": job.error,
        "download_url": download_url if job.status == ReportExport.Status.DONE else "",
    }
