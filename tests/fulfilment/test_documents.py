"""Batch-shipping documents (apps/fulfilment/documents.py): the 76 × 130 mm thermal labels, read
back as a printer and a scanner would (pypdfium2 renders the PDF at 203 and 300 dpi; the barcode
is decoded from one pixel row), and the picking list as XLSX and CSV. No database.

The rendered pages are kept in test-artifacts/screenshots/ (where the browser tests put theirs)."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from barcode.charsets import code128
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from PIL import Image
from reportlab.lib.units import mm

from apps.core import fonts
from apps.fulfilment import documents
from apps.fulfilment.carriers.base import Party, Waybill, WaybillRequest
from apps.fulfilment.documents import (
    BarcodeTooLong,
    LabelData,
    LabelFontMissing,
    PickLine,
    PickRow,
    barcode_modules,
    label_data,
    picking_list_csv,
    picking_list_xlsx,
    picking_rows,
    render_labels,
    wrap_text,
)

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"  # as tests/browser/conftest.py
PT_PER_MM = 72 / 25.4

SENDER = Party(
    name="李小美旗舰店",
    mobile="13900001111",
    province="浙江省",
    city="杭州市",
    district="余杭区",
    detail="文一西路 998 号 5 幢 3 楼直播间",
)
RECEIVER = Party(
    name="张三丰",
    mobile="13800138000",
    province="上海市",
    city="上海市",
    district="浦东新区",
    detail="世纪大道 100 号环球金融中心 45 楼 4501 室",
)
LONG_RECEIVER = Party(
    name="欧阳娜娜（代收：上海浦东新区陆家嘴金融贸易区管理委员会收发室王师傅）",
    mobile="+86 138-0013-8000",
    province="新疆维吾尔自治区",
    city="伊犁哈萨克自治州",
    district="霍尔果斯市",
    detail=(
        "卡拉苏河口岸国际边境合作中心中方配套区综合服务大楼 B 座 17 层 1708 室"
        "（请从北门进入，电梯到 17 层后左转第三间，工作日 9:00-18:00 有人代收，节假日请放门卫室）"
    ),
)
PRINTED = datetime(2026, 6, 1, 2, 30, tzinfo=UTC)  # 10:30 in Beijing


def make_label(**overrides: object) -> LabelData:
    fields: dict[str, object] = {
        "waybill_no": "78901234567890",
        "express": "ZTO",
        "routing_code": "310-A01 02",
        "dest_code": "021",
        "sender": SENDER,
        "receiver": RECEIVER,
        "goods": (("口红", 2), ("面膜", 1)),
        "parcel_code": "P20260601-0123",
        "order_codes": ("LC20260601000001", "LC20260601000002"),
        "merchant_name": "小美美妆",
        "printed_at": PRINTED,
    }
    fields.update(overrides)
    return LabelData(**fields)  # type: ignore[arg-type]


def render(page: pdfium.PdfPage, dpi: int) -> Image.Image:
    return page.render(scale=dpi / 72).to_pil().convert("L")


def page_text(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()


def flat(text: str) -> str:
    return "".join(text.split())


# --- pages ------------------------------------------------------------------------------------


def test_render_labels_gives_one_76_by_130_mm_page_per_label() -> None:
    labels = [make_label(waybill_no=f"7890123456789{i}", parcel_code=f"P{i}") for i in range(3)]
    pdf = render_labels(labels)
    assert pdf.startswith(b"%PDF-")
    assert b"/ASCII85Decode" not in pdf and b"/FlateDecode" in pdf  # compressed, not also ASCII-armoured
    with pdfium.PdfDocument(pdf) as doc:
        assert len(doc) == 3
        for i in range(len(doc)):
            page = doc[i]
            left, bottom, right, top = page.get_mediabox()
            assert (left, bottom) == (0, 0)
            assert right == pytest.approx(76 * PT_PER_MM, abs=0.01)
            assert top == pytest.approx(130 * PT_PER_MM, abs=0.01)
            assert page.get_size() == (right, top)
            assert f"7890123456789{i}" in page_text(page)  # in the order given


def test_labels_drawn_by_worker_processes_are_the_same_pages_in_one_document() -> None:
    """A big batch's labels are drawn in parts by worker processes and joined: the same pages, in
    the order given, with the same text and the same pixels as drawn in one process; each part's
    font subsets under a name of their own; the document keeps its title."""
    labels = [
        make_label(waybill_no=f"7890123456{i:04d}", parcel_code=f"P{i}", receiver=LONG_RECEIVER if i % 3 else RECEIVER)
        for i in range(7)
    ]
    alone, parted = render_labels(labels), render_labels(labels, processes=3)
    with pdfium.PdfDocument(alone) as one, pdfium.PdfDocument(parted) as joined:
        assert len(joined) == len(one) == 7
        assert joined.get_metadata_dict()["Title"] == "e-waybill labels"
        for i in range(7):
            assert page_text(joined[i]) == page_text(one[i])
            assert f"7890123456{i:04d}" in page_text(joined[i])
            assert render(joined[i], 100).tobytes() == render(one[i], 100).tobytes()
    for part in range(3):
        assert f"WenQuanYiZenHei-0-p{part}".encode() in parted
    assert b"WenQuanYiZenHei-0-p" not in alone


def _render_in_daemon(labels: list[LabelData], out: Any) -> None:
    out.send(render_labels(labels, processes=2))


def test_a_daemonic_process_draws_the_labels_itself() -> None:
    """A daemonic process may not start processes (a django-q2 worker with ``daemonize_workers``
    on): the labels are drawn in it, the same bytes as in one process."""
    import multiprocessing

    labels = [make_label(waybill_no=f"7890123456{i:04d}") for i in range(3)]
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_render_in_daemon, args=(labels, send), daemon=True)
    child.start()
    try:
        assert receive.poll(60)
        assert receive.recv() == render_labels(labels)
    finally:
        child.join(30)
    assert child.exitcode == 0


@pytest.mark.parametrize("dpi", [203, 300])
def test_label_page_renders_to_png_at_printer_resolutions(dpi: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    pdf = render_labels([make_label(), make_label(receiver=LONG_RECEIVER, waybill_no="SF1401234567890", express="SF")])
    with pdfium.PdfDocument(pdf) as doc:
        for i in range(len(doc)):
            image = render(doc[i], dpi)
            assert image.size == (math.ceil(76 / 25.4 * dpi), math.ceil(130 / 25.4 * dpi))
            path = SHOTS / f"label-{i + 1}-{dpi}dpi.png"
            image.save(path)
            dark = sum(image.histogram()[:128])
            assert 0.04 < dark / (image.size[0] * image.size[1]) < 0.5  # drawn on, not a black page


# --- barcode ----------------------------------------------------------------------------------


def decode_code128(modules: str) -> str:
    """A Code128 decoder (symbol table from python-barcode): modules → text, checksum verified."""
    assert modules.endswith(code128.STOP + "11"), "no stop pattern and termination bar"
    body = modules[: -len(code128.STOP + "11")]
    assert len(body) % 11 == 0
    values = [code128.CODES.index(body[i : i + 11]) for i in range(0, len(body), 11)]
    start, *data, check = values
    assert start in (103, 104, 105)
    assert (start + sum(i * v for i, v in enumerate(data, start=1))) % 103 == check, "bad checksum"
    a = {v: k for k, v in code128.A.items()}
    b = {v: k for k, v in code128.B.items()}
    charset = {103: "A", 104: "B", 105: "C"}[start]
    out = []
    for value in data:
        if charset == "C" and value in (100, 101):
            charset = "B" if value == 100 else "A"
        elif charset != "C" and value == 99:
            charset = "C"
        elif (charset, value) in (("A", 100), ("B", 101)):
            charset = "B" if value == 100 else "A"
        elif charset == "C":
            out.append(f"{value:02d}")
        else:
            out.append((a if charset == "A" else b)[value])
    return "".join(out)


def scan_row(row: list[int], *, threshold: int = 128) -> tuple[int, list[int]]:
    """Runs of dark and light pixels between the first and the last dark pixel of one row:
    (start x, run lengths), starting with a dark run."""
    dark = [v < threshold for v in row]
    first = dark.index(True)
    last = len(dark) - 1 - dark[::-1].index(True)
    runs: list[int] = []
    current, length = True, 0
    for d in dark[first : last + 1]:
        if d == current:
            length += 1
        else:
            runs.append(length)
            current, length = d, 1
    runs.append(length)
    return first, runs


def runs_to_modules(runs: list[int], total_modules: int) -> str:
    """Pixel runs to modules, from the cumulative edge positions (so edge blur does not add up)."""
    width = sum(runs)
    edges = [0]
    for run in runs:
        edges.append(edges[-1] + run)
    boundaries = [round(e * total_modules / width) for e in edges]
    return "".join(("1" if i % 2 == 0 else "0") * (boundaries[i + 1] - boundaries[i]) for i in range(len(runs)))


def barcode_row(image: Image.Image, dpi: int) -> list[int]:
    """The pixel row across the middle of the bars, between the label frame lines."""
    bar_middle_mm = documents.MARGIN / mm + documents.HEADER_MM + documents.ROUTING_MM + 2 + 7
    y = round(bar_middle_mm / 25.4 * dpi)
    inset = round((documents.MARGIN / mm + 0.8) / 25.4 * dpi)  # inside the frame lines
    return [image.getpixel((x, y)) for x in range(inset, image.size[0] - inset)]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("express", "waybill_no"),
    [("ZTO", "78901234567890"), ("SF", "SF1401234567890"), ("JD", "JDVA00123456789-1-1-")],
)
def test_label_barcode_scans_back_to_the_waybill_number_at_300_dpi(express: str, waybill_no: str) -> None:
    expected = barcode_modules(waybill_no)
    with pdfium.PdfDocument(render_labels([make_label(express=express, waybill_no=waybill_no)])) as doc:
        page = doc[0]
        image = render(page, 300)
        assert waybill_no in page_text(page)  # printed under the bars too
    row = barcode_row(image, 300)
    first, runs = scan_row(row)
    modules = runs_to_modules(runs, len(expected))
    assert modules == expected
    assert decode_code128(modules) == waybill_no
    module_mm = sum(runs) / len(expected) / 300 * 25.4
    assert module_mm >= 0.25
    quiet_px = documents.QUIET_MODULES * module_mm / 25.4 * 300
    assert first >= quiet_px  # nothing dark between the frame line and the bars
    assert len(row) - (first + sum(runs)) >= quiet_px


def test_label_barcode_sits_on_the_203_dpi_dot_grid_and_scans_at_203_dpi() -> None:
    """Every bar edge in the PDF is a whole number of 203-dpi printer dots from the page edge, a
    module is at least 2 dots (0.25 mm), and a render at the printer's resolution scans back."""
    waybill_no = "78901234567890"
    expected = barcode_modules(waybill_no)
    with pdfium.PdfDocument(render_labels([make_label(waybill_no=waybill_no)])) as doc:
        page = doc[0]
        bars = [
            obj.get_bounds()
            for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH])
            if abs((obj.get_bounds()[3] - obj.get_bounds()[1]) - 14 * mm) < 0.5
        ]
        image = render(page, 203)
    assert len(bars) == expected.count("01") + expected.startswith("1")  # one rectangle per bar
    edges = [edge / documents.DOT for left, _, right, _ in bars for edge in (left, right)]
    assert all(abs(e - round(e)) < 0.01 for e in edges), "a bar edge off the dot grid"
    widths = {round((right - left) / documents.DOT) for left, _, right, _ in bars}
    module_dots = math.gcd(*widths)
    assert module_dots >= documents.MIN_MODULE_DOTS
    assert sum(round((r - left) / documents.DOT) for left, _, r, _ in bars) == expected.count("1") * module_dots

    first, runs = scan_row(barcode_row(image, 203))
    assert runs_to_modules(runs, len(expected)) == expected


def test_label_refuses_a_waybill_number_too_long_to_scan() -> None:
    with pytest.raises(BarcodeTooLong):
        render_labels([make_label(waybill_no="SF" + "X" * 40)])


# --- text -------------------------------------------------------------------------------------


def test_label_text_is_embedded_and_searchable() -> None:
    with pdfium.PdfDocument(render_labels([make_label()])) as doc:
        text = flat(page_text(doc[0]))
    for expected in (
        "中通快递",
        "310-A0102",  # the routing code (its space dropped by flat)
        "021",
        "张三丰",
        "13800138000",  # unmasked: the courier calls
        flat(RECEIVER.full_address),
        "李小美旗舰店",
        "13900001111",
        flat(SENDER.full_address),
        "口红×2；面膜×1",
        "P20260601-0123",
        "LC20260601000001",
        "LC20260601000002",
        "小美美妆",
        "2026-06-0110:30",  # Beijing time
    ):
        assert expected in text


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_label_captions_are_chinese_whatever_the_ui_language(language: str) -> None:
    with translation.override(language):
        pdf = render_labels([make_label()])
        assert translation.get_language() == language  # restored afterwards
    with pdfium.PdfDocument(pdf) as doc:
        text = flat(page_text(doc[0]))
    for caption in ("收", "寄", "物品：", "包裹：", "订单：", "商家：", "打印", "签收人/时间", "目的地"):
        assert caption in text
    for english in ("Goods", "Parcel", "Shop", "Printed"):
        assert english not in text


def char_boxes(page: pdfium.PdfPage) -> list[tuple[str, tuple[float, float, float, float]]]:
    textpage = page.get_textpage()
    try:
        return [
            (textpage.get_text_range(i, 1), textpage.get_charbox(i))
            for i in range(textpage.count_chars())
            if textpage.get_text_range(i, 1).strip()
        ]
    finally:
        textpage.close()


def test_long_address_name_goods_and_orders_wrap_inside_the_margins() -> None:
    label = make_label(
        receiver=LONG_RECEIVER,
        sender=LONG_RECEIVER,
        goods=tuple((f"超长商品名称第{i}款水润保湿精华口红套装礼盒限定版", i) for i in range(1, 30)),
        order_codes=tuple(f"LC2026060100{i:04d}" for i in range(40)),
        merchant_name="小美美妆官方旗舰店" * 6,
        routing_code="新疆伊犁霍尔果斯口岸转运中心-999-ZZ 88",
    )
    with pdfium.PdfDocument(render_labels([label])) as doc:
        page = doc[0]
        text = page_text(page)
        boxes = char_boxes(page)
        image = render(page, 203)
    SHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SHOTS / "label-long-texts-203dpi.png")
    width, height = documents.PAGE_SIZE
    margin = documents.MARGIN
    assert boxes
    for ch, (left, bottom, right, top) in boxes:
        assert margin <= left and right <= width - margin, f"{ch!r} outside the side margins"
        assert margin <= bottom and top <= height - margin, f"{ch!r} outside the top/bottom margins"

    # the receiver's address is complete, over several lines, and inside the receiver's section
    lines = [line for line in text.splitlines() if line.strip()]
    assert flat(LONG_RECEIVER.full_address) in flat(text)
    assert sum(1 for line in lines if line.strip() and line.strip() in LONG_RECEIVER.full_address) >= 3
    section_top = height - margin - (documents.HEADER_MM + documents.ROUTING_MM + documents.BARCODE_MM) * mm
    section_bottom = section_top - documents.RECEIVER_MM * mm
    tail = LONG_RECEIVER.detail[-6:]  # the address's last characters
    flat_chars = "".join(ch for ch, _ in boxes)
    at = flat_chars.index(tail)  # the first occurrence: the receiver's (drawn before the sender's)
    for _ch, (_l, bottom, _r, top) in boxes[at : at + len(tail)]:
        assert section_bottom <= bottom and top <= section_top

    # a name too long for its two lines is cut, the phone number never
    assert "欧阳娜娜（代收" in text
    assert text.count(LONG_RECEIVER.mobile) == 2  # receiver and sender, whole

    # no line starts with closing punctuation (the goods list is joined with "；")
    assert not any(line.strip()[0] in "，。；：、）" for line in lines)
    assert not any(line.strip()[-1] == "×" for line in lines)  # "×2" stays whole

    # goods and orders too long for their boxes are cut with "…", the orders with their count
    goods_line = next(line for line in lines if line.startswith("物品"))
    assert "…" in text
    assert "共 40 单" in flat_chars or "共40单" in flat_chars
    assert goods_line

    # the 2.5 mm strip along every edge stays white (the printer's unprintable border)
    strip = round(2.5 / 25.4 * 203)
    w, h = image.size
    for box in ((0, 0, w, strip), (0, h - strip, w, h), (0, 0, strip, h), (w - strip, 0, w, h)):
        assert image.crop(box).getextrema()[0] > 200, f"ink in the margin strip {box}"


def test_wrap_text_keeps_phone_numbers_and_latin_runs_whole() -> None:
    font = documents.label_font()
    lines = wrap_text("收件人张三 13800138000 上海市浦东新区世纪大道100号", font, 12, 30 * mm)
    assert any("13800138000" in line for line in lines)
    assert all(documents.pdfmetrics.stringWidth(line, font, 12) <= 30 * mm for line in lines)
    assert "".join(lines).replace(" ", "") == "收件人张三13800138000上海市浦东新区世纪大道100号"


def _wrap_measuring_whole_lines(text: str, font: str, size: float, width: float) -> list[str]:
    """``wrap_text`` as it was first written: every candidate line measured whole by reportlab."""

    def w(s: str) -> float:
        return documents.pdfmetrics.stringWidth(s, font, size)

    lines: list[str] = []
    current, last = "", 0
    for token in documents._TOKENS.findall(text.replace("\r", "")):
        if token.isspace():
            if "\n" in token:
                lines.append(current.rstrip())
                current, last = "", 0
            elif current and w(current + " ") <= width:
                current += " "
            continue
        if w(current + token) <= width:
            current, last = current + token, len(current)
            continue
        carried = ""
        if token in documents.NO_LINE_START and current[:last].strip():
            current, carried = current[:last], current[last:]
        if current.strip():
            lines.append(current.rstrip())
        current, last = carried, 0
        if w(current + token) <= width:
            current, last = current + token, len(current)
            continue
        for ch in token:
            if current and w(current + ch) > width:
                lines.append(current)
                current = ""
            current += ch
        last = 0
    if current.strip():
        lines.append(current.rstrip())
    return lines


WRAP_ALPHABET = list("收件人张三上海市浦东新区（代收）。，、abcXYZ0123456789-+×… \n")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(
        alphabet=st.sampled_from(list("收件人张三上海市浦东新区（代收）。，、abcXYZ0123456789-+×… \n")), max_size=90
    ),
    size=st.sampled_from([6, 6.5, 7, 9, 12, 13.5, 17, 34]),
    width=st.floats(min_value=10, max_value=220),
)
def test_wrap_text_breaks_exactly_where_measuring_whole_lines_would(text: str, size: float, width: float) -> None:
    """``wrap_text`` carries each line's width along instead of measuring the line again for every
    token: the same breaks, to the last bit of every comparison, as measuring whole lines."""
    font = documents.label_font()
    assert wrap_text(text, font, size, width) == _wrap_measuring_whole_lines(text, font, size, width)


# --- inputs and font --------------------------------------------------------------------------


def test_label_data_from_the_waybill_request_and_answer() -> None:
    request = WaybillRequest(order_code="P77", express="YTO", sender=SENDER, receiver=RECEIVER, items=(("口红", 2),))
    waybill = Waybill(
        carrier="kuaidi100",
        express="YTO",
        order_code="P77",
        waybill_no="YT9693083639795",
        routing_code="021-B 12",
        dest_code="200",
    )
    label = label_data(request, waybill, order_codes=("LC1",), merchant_name="小美", printed_at=PRINTED)
    assert label.express_name == "圆通速递"
    assert (label.waybill_no, label.routing_code, label.dest_code, label.parcel_code) == (
        "YT9693083639795",
        "021-B 12",
        "200",
        "P77",
    )
    assert label.goods == (("口红", 2),)


def test_label_data_rejects_an_unknown_express_company_and_no_labels() -> None:
    with pytest.raises(ValueError, match="unknown express"):
        make_label(express="NOPE")
    with pytest.raises(ValueError, match="no labels"):
        render_labels([])


def test_missing_label_font_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fonts, "FONT_FILE", tmp_path / "wqy-zenhei.ttc")
    monkeypatch.setattr(fonts, "_fonts_registered", set())
    with pytest.raises(LabelFontMissing, match="fonts-wqy-zenhei") as caught:
        render_labels([make_label()])
    assert "apt-get install" in str(caught.value)


# --- picking list -----------------------------------------------------------------------------


def pick(sku: str, location: str, quantity: int, order: str, parcel: str, **kw: str) -> PickLine:
    return PickLine(
        sku_code=sku,
        product_name=kw.get("name", f"商品 {sku}"),
        option=kw.get("option", "默认"),
        location=location,
        quantity=quantity,
        order_code=order,
        parcel_code=parcel,
    )


ZH_HEADERS = ["库位", "SKU 编码", "商品", "规格", "数量", "订单数", "包裹"]
LINES = [
    pick("LIP-01", "A-10", 2, "LC1", "P1", name="丝绒口红", option="色号 01"),
    pick("MASK-5", "A-2", 1, "LC1", "P1", name="补水面膜", option="5 片装"),
    pick("LIP-01", "A-10", 1, "LC2", "P2", name="丝绒口红", option="色号 01"),
    pick("LIP-01", "A-10", 3, "LC2", "P3", name="丝绒口红", option="色号 01"),
    pick("GIFT", "", 1, "LC3", "P4", name="赠品小样"),
    pick("LIP-02", "A-10", 1, "LC3", "P4"),
    pick("=HYPERLINK(1)", "B-1", 1, "LC4", "P5", name="+danger", option="@SUM(A1)"),
]


def test_picking_rows_group_per_sku_and_location_in_walking_order() -> None:
    rows = picking_rows(LINES)
    assert [(r.location, r.sku_code) for r in rows] == [
        ("A-2", "MASK-5"),  # A-2 before A-10: digits compared as numbers
        ("A-10", "LIP-01"),
        ("A-10", "LIP-02"),
        ("B-1", "=HYPERLINK(1)"),
        ("", "GIFT"),  # no location: last
    ]
    lip = rows[1]
    assert lip == PickRow(
        location="A-10",
        sku_code="LIP-01",
        product_name="丝绒口红",
        option="色号 01",
        quantity=6,
        order_codes=("LC1", "LC2"),
        parcel_codes=("P1", "P2", "P3"),
    )
    assert lip.orders == 2
    assert picking_rows([]) == []


def test_picking_list_xlsx_has_a_bold_frozen_header_rows_and_a_total() -> None:
    rows = picking_rows(LINES)
    with translation.override("zh-hans"):
        data = picking_list_xlsx(rows, title="拣货单 W-0601 & 直播", generated_at=PRINTED)
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0] == ZH_HEADERS
    assert values[2] == ["A-10", "LIP-01", "丝绒口红", "色号 01", 6, 2, "P1, P2, P3"]
    assert values[4] == ["B-1", "'=HYPERLINK(1)", "'+danger", "'@SUM(A1)", 1, 1, "P5"]  # no formula runs
    assert values[-1] == ["合计", None, None, None, 9 + 1, 4, 5]
    assert len(values) == 1 + len(rows) + 1
    assert all(cell.font.bold for cell in ws[1])
    assert all(cell.font.bold for cell in ws[ws.max_row])
    assert not ws["A2"].font.bold
    assert ws.freeze_panes == "A2"
    assert ws.title == "拣货单"
    assert ws.column_dimensions["C"].width >= 8
    assert ws.oddHeader.center.text == "拣货单 W-0601 && 直播"
    assert ws.oddHeader.right.text == "2026-06-01 10:30"  # the project's time zone (Asia/Shanghai)


def test_picking_list_csv_has_a_bom_the_same_columns_and_no_formulas() -> None:
    rows = picking_rows(LINES)
    with translation.override("zh-hans"):
        data = picking_list_csv(rows)
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0] == ZH_HEADERS
    assert table[2] == ["A-10", "LIP-01", "丝绒口红", "色号 01", "6", "2", "P1, P2, P3"]
    assert table[4][:4] == ["B-1", "'=HYPERLINK(1)", "'+danger", "'@SUM(A1)"]
    assert len(table) == 1 + len(rows)


def test_picking_list_headers_follow_the_ui_language() -> None:
    with translation.override("en"):
        header = next(csv.reader(io.StringIO(picking_list_csv([]).decode("utf-8-sig"))))
    assert header == ["Location", "SKU code", "Product", "Option", "Quantity", "Orders", "Parcels"]


def test_empty_picking_list_is_header_only() -> None:
    with translation.override("zh-hans"):
        csv_data = picking_list_csv([])
        xlsx_data = picking_list_xlsx([], title="空", generated_at=PRINTED)
    assert list(csv.reader(io.StringIO(csv_data.decode("utf-8-sig")))) == [ZH_HEADERS]
    ws = load_workbook(io.BytesIO(xlsx_data)).active
    assert ws is not None
    assert [list(r) for r in ws.iter_rows(values_only=True)] == [ZH_HEADERS]
