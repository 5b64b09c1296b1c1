"""Order-list exports (CSV and XLSX) for the back office.

One row per order; an order's lines are joined in the line columns (one line per text line in
the cell: ``SKU code``, ``product``, ``SKU name`` and ``qty`` line up). So the file has exactly the
rows of the list it was exported from.

Every text cell that a spreadsheet would read as a formula (starting with ``= + - @``, a tab or a
carriage return) is prefixed with ``'`` (CSV injection). CSV is UTF-8 with a BOM so that Excel
opens Chinese correctly.

Small exports are built while the browser waits (``export_rows`` + ``write_csv`` /
``write_xlsx``); larger ones run as an :class:`~apps.orders.models.ExportJob` (``export_job_run``)
that writes through Django's storage API under ``exports/`` and counts its rows as it goes."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db.models import Prefetch, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.core.spreadsheets import safe_cell

from .models import ExportJob, Order, OrderLine

CHUNK = 500  # orders fetched (with their lines) per round trip, and the progress step of a job


def postal_line(address: dict | None) -> str:
    """An address as one postal line, the Chinese way: 省 市 区 详细地址."""
    a = address or {}
    return " ".join(str(a.get(k) or "").strip() for k in ("province", "city", "district", "detail") if a.get(k))


def headers() -> list[str]:
    return [
        _("Order no."),
        _("Placed at"),
        _("Status"),
        _("Buyer"),
        _("Phone"),
        _("Recipient"),
        _("Address"),
        _("SKU code"),
        _("Product"),
        _("SKU name"),
        _("Qty"),
        _("Total (¥)"),
        _("Paid at"),
        _("Channel"),
        _("Show"),
        _("Carrier"),
        _("Tracking number"),
    ]


def _local(dt: Any) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


def export_queryset(orders: QuerySet[Order]) -> QuerySet[Order]:
    lines = OrderLine.objects.select_related("sku", "sku__product").order_by("id")
    return orders.select_related("buyer", "session").prefetch_related(Prefetch("lines", queryset=lines))


def export_rows(orders: QuerySet[Order], *, on_chunk: Callable[[int], None] | None = None) -> Iterator[list[Any]]:
    """The export's rows (headers not included), in the list's order, fetched in chunks."""
    done = 0
    for order in export_queryset(orders).iterator(chunk_size=CHUNK):
        lines = list(order.lines.all())
        address = order.shipping_address or {}
        yield [
            order.public_id,
            _local(order.created_at),
            order.get_status_display(),
            order.buyer.name or order.buyer.external_id,
            order.buyer.phone or address.get("phone", ""),
            address.get("name", ""),
            postal_line(address),
            "\n".join(line.sku.code for line in lines),
            "\n".join(line.sku.product.name for line in lines),
            "\n".join(line.sku.name for line in lines),
            "\n".join(str(line.quantity) for line in lines),
            Decimal(order.total),
            _local(order.paid_at),
            order.channel,
            order.session.title if order.session else "",
            order.carrier,
            order.tracking_number,
        ]
        done += 1
        if on_chunk is not None and done % CHUNK == 0:
            on_chunk(done)
    if on_chunk is not None:
        on_chunk(done)


def write_csv(rows: Iterable[list[Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(headers())
    for row in rows:
        w.writerow([safe_cell(f"{v:.2f}" if isinstance(v, Decimal) else v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_xlsx(rows: Iterable[list[Any]]) -> bytes:
    from openpyxl import Workbook  # imported here: only exports need it

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("Orders"))
    ws.append(headers())
    for row in rows:
        ws.append([safe_cell(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


WRITERS: dict[str, Callable[[Iterable[list[Any]]], bytes]] = {"csv": write_csv, "xlsx": write_xlsx}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_filename(fmt: str) -> str:
    return f"orders-{timezone.localtime().strftime('%Y%m%d-%H%M%S')}.{fmt}"


def export_job_run(*, job: ExportJob, orders: QuerySet[Order]) -> ExportJob:
    """Build a job's file from ``orders`` (the list it was asked for, already scoped and
    filtered), saving progress as it goes. A job that is done already is left alone (a task
    retried after it finished writes nothing twice)."""
    if job.status == ExportJob.Status.DONE:
        return job
    total = orders.count()
    ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.RUNNING, rows_total=total, rows_done=0)

    def progress(done: int) -> None:
        ExportJob.objects.filter(pk=job.pk).update(rows_done=min(done, total))

    try:
        with translation.override(job.language):
            content = WRITERS[job.format](export_rows(orders, on_chunk=progress))
        # An unguessable name: the file is fetched through the job's tenant-walled download view.
        name = storages["exports"].save(f"{job.pk}-{secrets.token_hex(16)}.{job.format}", ContentFile(content))
    except Exception as exc:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(exc)[:200], finished_at=timezone.now()
        )
        raise
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.DONE, file=name, rows_done=total, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job
