"""CSV and XLSX export of the order list exactly as filtered (all pages), Excel-safe, and the
job with its progress for large exports; tenant walls on the jobs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from apps.orders.exports import safe_cell
from apps.orders.models import ExportJob, OrderStatus

from .helpers import body, staff_client

pytestmark = pytest.mark.django_db
S = OrderStatus
URL = "/admin/orders/order/"


@pytest.fixture(autouse=True)
def _media(tmp_path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())  # the BOM: Excel opens UTF-8 Chinese correctly
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def read_xlsx(content: bytes) -> list[list]:
    ws = load_workbook(io.BytesIO(content)).active
    return [list(row) for row in ws.iter_rows(values_only=True)]


@pytest.fixture
def orders(merchant, other_merchant, make_order):  # type: ignore[no-untyped-def]
    made = [
        make_order(merchant=merchant, status=S.PAID, body=body(buyer="a", name="张三", phone="13911110000")),
        make_order(merchant=merchant, status=S.CONFIRMED, body=body(buyer="b", name="=cmd|' /C calc'!A0")),
        make_order(merchant=merchant, body=body(buyer="c", name="王五")),
    ]
    make_order(merchant=other_merchant, status=S.PAID, body=body(buyer="r", phone="13911110000"))
    return made


def test_csv_exports_the_filtered_list_every_page_with_postal_lines(merchant, orders, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.contrib import admin

    from apps.orders.models import Order

    monkeypatch.setattr(admin.site._registry[Order], "list_per_page", 1)
    c = staff_client(merchant)
    assert len(c.get(URL, {"tab": "to_ship"}).context["cl"].result_list) == 1  # the page shows one
    r = c.get(URL + "export/csv/", {"tab": "to_ship"})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert "attachment" in r["Content-Disposition"]
    rows = read_csv(r.content)
    assert rows[0][:3] == ["Order no.", "Placed at", "Status"]
    listed = c.get(URL, {"tab": "to_ship"}).context["cl"].queryset
    assert [row[0] for row in rows[1:]] == [o.public_id for o in listed]  # same rows, same order
    assert {row[0] for row in rows[1:]} == {orders[0].public_id, orders[1].public_id}
    first = next(row for row in rows if row[0] == orders[0].public_id)
    line = orders[0].lines.select_related("sku__product").get()
    assert first[2] == "Paid" and first[3] == "张三" and first[4] == "13911110000"
    assert first[6] == "浙江省 杭州市 西湖区 文三路 1 号"
    assert first[7] == line.sku.code and first[8] == line.sku.product.name and first[10] == "1"
    assert first[11] == "59.90" and first[12]  # paid at, local time


def test_export_follows_the_search(merchant, orders) -> None:  # type: ignore[no-untyped-def]
    r = staff_client(merchant).get(URL + "export/csv/", {"q": "+86 139 1111 0000"})
    assert [row[0] for row in read_csv(r.content)[1:]] == [orders[0].public_id]  # not the rival's


def test_cells_that_look_like_formulas_are_defused(merchant, orders) -> None:  # type: ignore[no-untyped-def]
    assert [safe_cell(v) for v in ("=1+1", "+86", "-2", "@SUM", "ok", 5)] == ["'=1+1", "'+86", "'-2", "'@SUM", "ok", 5]
    c = staff_client(merchant)
    rows = read_csv(c.get(URL + "export/csv/").content)
    assert "'=cmd|' /C calc'!A0" in [row[3] for row in rows]
    xrows = read_xlsx(c.get(URL + "export/xlsx/").content)
    assert "'=cmd|' /C calc'!A0" in [row[3] for row in xrows]


def test_xlsx_rows_match_the_list_in_chinese(merchant, orders) -> None:  # type: ignore[no-untyped-def]
    c = staff_client(merchant, language="zh-hans")
    r = c.get(URL + "export/xlsx/", {"status__exact": "pending_payment"})
    assert r["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = read_xlsx(r.content)
    assert rows[0][0] == "订单号" and rows[0][6] == "收货地址"
    assert [row[0] for row in rows[1:]] == [orders[2].public_id]
    assert rows[1][2] == "待支付" and rows[1][3] == "王五" and float(rows[1][11]) == 59.90


def test_a_large_export_runs_as_a_job_with_progress_and_a_download(
    merchant, orders, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.EXPORT_SYNC_MAX_ROWS = 1
    c = staff_client(merchant)
    with django_capture_on_commit_callbacks(execute=True):
        r = c.get(URL + "export/xlsx/", {"q": "浙江"})
    job = ExportJob.objects.get()
    assert r.status_code == 302 and r.url == f"{URL}exports/{job.pk}/"
    assert (job.merchant_id, job.filters, job.format) == (merchant.pk, "q=%E6%B5%99%E6%B1%9F", "xlsx")
    page = c.get(r.url)
    assert page.status_code == 200 and b"<progress" in page.content and b"js/export-progress.js" in page.content
    state = c.get(f"{URL}exports/{job.pk}/progress/").json()
    assert state["status"] == "done" and state["rows_done"] == state["rows_total"] == 3 and state["percent"] == 100
    download = c.get(state["download_url"])
    assert download.status_code == 200
    rows = read_xlsx(b"".join(download.streaming_content))
    assert sorted(row[0] for row in rows[1:]) == sorted(o.public_id for o in orders)


def test_export_jobs_are_walled_per_user_and_merchant(
    merchant, other_merchant, orders, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.EXPORT_SYNC_MAX_ROWS = 0
    with django_capture_on_commit_callbacks(execute=True):
        staff_client(merchant).get(URL + "export/csv/")
    job = ExportJob.objects.get()
    rival = staff_client(other_merchant, name="rival-staff")
    colleague = staff_client(merchant, name="colleague")
    for c in (rival, colleague):
        for tail in ("", "progress/", "download/"):
            assert c.get(f"{URL}exports/{job.pk}/{tail}").status_code == 404
    # the rival's own export holds the rival's orders only
    with django_capture_on_commit_callbacks(execute=True):
        rival.get(URL + "export/csv/")
    theirs = ExportJob.objects.exclude(pk=job.pk).get()
    rows = read_csv(b"".join(rival.get(f"{URL}exports/{theirs.pk}/download/").streaming_content))
    assert len(rows) == 2 and rows[1][0] not in {o.public_id for o in orders}


def test_an_unknown_format_is_a_404(merchant, orders) -> None:  # type: ignore[no-untyped-def]
    assert staff_client(merchant).get(URL + "export/pdf/").status_code == 404


def test_export_files_are_private_not_under_the_served_media_folder(settings) -> None:  # type: ignore[no-untyped-def]
    """Buyers' names, phones and addresses: the file is reachable only through the download view."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages
    from django.test import Client

    exports = storages["exports"]
    name = exports.save("probe.csv", ContentFile(b"x"))
    path = Path(exports.path(name)).resolve()
    assert not path.is_relative_to(Path(settings.MEDIA_ROOT).resolve())
    assert Client().get(f"/media/{name}").status_code == 404  # nothing serves it
    exports.delete(name)
