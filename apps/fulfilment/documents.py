"""The printable documents of batch shipping: thermal shipping labels (PDF) and the picking list
(XLSX, CSV).

Pure: no database, no models. Frozen dataclasses in, bytes out; the batch job builds the inputs
from its parcels and waybills (:func:`label_data` from a carrier request and answer) and stores or
sends the bytes.

**Labels** (:func:`render_labels`). One PDF page per parcel, exactly 76 × 130 mm: the one-part
Chinese e-waybill (一联单, ``docs/carriers.md`` §5) for 203-dpi thermal printers. Top to bottom:
express company and print time; the 大头笔 routing code (and the destination code when the carrier
gave one); the waybill number as a Code128 barcode with the number under it; receiver (收);
sender (寄); goods; our parcel code, order numbers and shop, and a signature box.

- Text is set in the CJK font of :mod:`apps.core.fonts` (WenQuanYi Zen Hei, embedded as a subset);
  without it :class:`LabelFontMissing` (never boxes in place of Chinese).
- Nothing is masked: the courier calls the receiver. Every text is fitted to its box: it wraps
  (CJK by character, Latin and digit runs such as phone numbers kept whole), shrinks to a floor
  size, and only then is cut with "…". Nothing is drawn outside the 3 mm page margin.
- The fixed captions (收, 寄, 物品 …) are gettext strings with English msgids (this app's catalog,
  context "shipping label") but are always rendered in Simplified Chinese, whatever the language
  of the person printing: their readers are the courier and the sorting centre. Times are Beijing
  time for the same reason.
- The bars come from python-barcode (``Code128(...).build()``) and are drawn as vector rectangles
  on the printer's dot grid, each module a whole number of 203-dpi dots (at least 2 dots, 0.25 mm;
  wider when the number fits), with 10-module quiet zones.

**Picking list** (拣货单; :func:`picking_rows`, :func:`picking_list_xlsx`,
:func:`picking_list_csv`). One row per SKU and location, in walking order (location, then SKU
code, digits compared as numbers so A-2 comes before A-10), with the quantity to pick, how many
orders want it and which parcels it goes into. Headers follow the current language (gettext).
Every text cell goes through :func:`apps.core.spreadsheets.safe_cell` (CSV injection). The CSV is
UTF-8 with a BOM (Excel in China) and holds the rows only; the XLSX adds a bold total row, a bold
frozen header that repeats on every printed page, and the title and time in the printed page
header.
"""

from __future__ import annotations

import csv
import functools
import io
import multiprocessing
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from barcode import Code128
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import npgettext, pgettext
from reportlab import rl_config
from reportlab.lib.colors import black, white
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from apps.core.fonts import FontMissing
from apps.core.fonts import cjk_font as label_font
from apps.core.spreadsheets import safe_cell

from .carriers.base import BEIJING, EXPRESS, Party, Waybill, WaybillRequest

# --- labels: page and printer ---------------------------------------------------------------

LABEL_WIDTH_MM: Final = 76
LABEL_HEIGHT_MM: Final = 130
PAGE_SIZE: Final[tuple[float, float]] = (LABEL_WIDTH_MM * mm, LABEL_HEIGHT_MM * mm)
MARGIN: Final = 3 * mm  # nothing is drawn nearer the edge (thermal heads do not reach it)
PRINTER_DPI: Final = 203
DOT: Final = 72 / PRINTER_DPI  # one printer dot, in points
MIN_MODULE_DOTS: Final = 2  # 2 dots = 0.250 mm, the narrowest bar a 203-dpi head prints reliably
MAX_MODULE_DOTS: Final = 4
QUIET_MODULES: Final = 10  # blank modules each side of the bars (Code128 asks for 10)
LABEL_LANGUAGE: Final = "zh-hans"

# Section heights in mm, top to bottom; they add up to the page height less both margins.
HEADER_MM, ROUTING_MM, BARCODE_MM, RECEIVER_MM, SENDER_MM, GOODS_MM, FOOTER_MM = 10, 16, 23, 30, 16, 12, 17
ELLIPSIS: Final = "…"
LabelFontMissing = FontMissing  # the labels' font (apps.core.fonts) is not installed


class BarcodeTooLong(ValueError):
    """A waybill number whose Code128 symbol does not fit the label at 0.25 mm per module."""


@dataclass(frozen=True, kw_only=True)
class LabelData:
    """One parcel's label. ``express`` is our express-company code (``EXPRESS``; its Chinese name
    is printed), ``routing_code`` the carrier's 大头笔, ``dest_code`` its destination sorting code
    (optional), ``goods`` (name, quantity) pairs, ``parcel_code`` our parcel's code,
    ``printed_at`` an aware datetime (printed in Beijing time)."""

    waybill_no: str
    express: str
    routing_code: str
    sender: Party
    receiver: Party
    goods: tuple[tuple[str, int], ...]
    parcel_code: str
    order_codes: tuple[str, ...]
    merchant_name: str
    printed_at: datetime
    dest_code: str = ""

    def __post_init__(self) -> None:
        if not self.waybill_no.strip():
            raise ValueError("a label needs a waybill number")
        if self.express not in EXPRESS:
            raise ValueError(f"unknown express company {self.express!r}")

    @property
    def express_name(self) -> str:
        return EXPRESS[self.express]["name"]


def label_data(
    request: WaybillRequest,
    waybill: Waybill,
    *,
    order_codes: tuple[str, ...],
    merchant_name: str,
    printed_at: datetime,
) -> LabelData:
    """The label of a parcel from the waybill request sent for it and the carrier's answer."""
    return LabelData(
        waybill_no=waybill.waybill_no,
        express=waybill.express or request.express,
        routing_code=waybill.routing_code,
        dest_code=waybill.dest_code,
        sender=request.sender,
        receiver=request.receiver,
        goods=request.items,
        parcel_code=request.order_code,
        order_codes=order_codes,
        merchant_name=merchant_name,
        printed_at=printed_at,
    )


def barcode_modules(data: str) -> str:
    """The Code128 symbol of ``data`` as python-barcode builds it: one character per module,
    ``1`` a bar, ``0`` a space, start and stop patterns and check character included."""
    return str(Code128(data).build()[0])


def render_labels(labels: Sequence[LabelData], *, processes: int = 1) -> bytes:
    """One PDF with one 76 × 130 mm page per label, in the order given.

    With ``processes`` > 1 the labels are drawn in that many parts by as many worker processes
    (forked: they start with the font and the translations this process has loaded) and the parts
    joined page by page into one document (:func:`join_pdfs`): the same pages, drawn by the same
    code, but each part embeds its own subsets of the font, named after the part so that no two
    differ under one name. In a daemonic process (which may not have children: a django-q2 worker
    unless ``daemonize_workers`` is off) they are drawn here.

    Raises :class:`LabelFontMissing` without the font, :class:`BarcodeTooLong` for a waybill
    number too long to print scannably, ValueError for no labels."""
    if not labels:
        raise ValueError("no labels to render")
    font = label_font()
    processes = min(processes, len(labels))
    if processes < 2 or multiprocessing.current_process().daemon:
        return _render(labels, font)
    size = -(-len(labels) // processes)
    parts = [list(labels[i : i + size]) for i in range(0, len(labels), size)]
    with ProcessPoolExecutor(max_workers=len(parts), mp_context=multiprocessing.get_context("fork")) as pool:
        pdfs = list(pool.map(_render_part, range(len(parts)), parts))
    return join_pdfs(pdfs)


def _render(labels: Sequence[LabelData], font: str) -> bytes:
    buf = io.BytesIO()
    a85 = rl_config.useA85
    # Streams compressed, not also ASCII85-encoded (reportlab's default, for 7-bit channels no
    # printer needs): a sixth less time and size, the same content.
    rl_config.useA85 = 0
    try:
        c = Canvas(buf, pagesize=PAGE_SIZE, invariant=True, pageCompression=1)
        c.setTitle("e-waybill labels")
        c.setCreator("livecommerce")
        with translation.override(LABEL_LANGUAGE):
            for label in labels:
                _Label(c, font, label).draw()
                c.showPage()
        c.save()
    finally:
        rl_config.useA85 = a85
    return buf.getvalue()


def _render_part(index: int, labels: list[LabelData]) -> bytes:
    """Part ``index`` of a document drawn by several processes (in a worker process). Its font
    subsets are named ``AAAAAA+WenQuanYiZenHei-0-p<index>``: the parts' subsets hold different
    glyphs, and a printer that caches fonts by name must not take one for another."""
    font = label_font()
    face = pdfmetrics.getFont(font).face
    face.subfontNameX = face.subfontNameX.split(b"-p")[0] + f"-p{index}".encode()
    return _render(labels, font)


def join_pdfs(parts: Sequence[bytes]) -> bytes:
    """The pages of ``parts``, in order, in one PDF: the first part's document (its title and
    creator) with the other parts' pages imported into it (pypdfium2, PDFium's page import)."""
    import pypdfium2 as pdfium  # imported here: only a big batch's labels need it

    doc = pdfium.PdfDocument(parts[0])
    try:
        for part in parts[1:]:
            src = pdfium.PdfDocument(part)
            try:
                doc.import_pages(src)
            finally:
                src.close()
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()
    finally:
        doc.close()


# --- labels: text fitting ------------------------------------------------------------------

NO_LINE_START: Final = frozenset("，。；：、！？）》」』】…,.;:!?)")  # punctuation that never begins a line
_TOKENS = re.compile(r"[!-~×]+|\s+|.", re.DOTALL)  # a run of printable ASCII (and ×) stays together


def wrap_text(text: str, font: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points: CJK may break between any two
    characters, a run of Latin letters, digits and punctuation (a phone number, "×2") only where it
    is itself too wide, and no line starts with closing punctuation (the word before it comes along)."""
    m = _Measure(font, size)
    lines: list[str] = []
    current = ""
    units = 0.0  # ``current``'s glyph widths added up from its start (see _Measure)
    last = 0  # where the last word of the current line starts
    for token in _TOKENS.findall(text.replace("\r", "")):
        if token.isspace():
            if "\n" in token:
                lines.append(current.rstrip())
                current, units, last = "", 0.0, 0
            elif current and m.width(current + " ", grown := m.grow(units, " ")) <= width:
                current, units = current + " ", grown
            continue
        grown = m.grow(units, token)
        if m.width(current + token, grown) <= width:
            current, units, last = current + token, grown, len(current)
            continue
        carried = ""
        if token in NO_LINE_START and current[:last].strip():  # 禁则
            current, carried = current[:last], current[last:]
        if current.strip():
            lines.append(current.rstrip())
        current, units, last = carried, m.grow(0.0, carried), 0
        grown = m.grow(units, token)
        if m.width(current + token, grown) <= width:
            current, units, last = current + token, grown, len(current)
            continue
        for ch in token:  # alone it is still too wide: break it by character
            grown = m.grow(units, ch)
            if current and m.width(current + ch, grown) > width:
                lines.append(current)
                current, grown = "", m.grow(0.0, ch)
            current, units = current + ch, grown
        last = 0
    if current.strip():
        lines.append(current.rstrip())
    return lines


class _Measure:
    """``pdfmetrics.stringWidth`` of a line that grows a token at a time, without measuring the
    whole line again for every token (``wrap_text`` did: most of a label's drawing time). For a
    TrueType font reportlab adds the glyph widths up from the first character and scales the sum
    (``0.001 * size * sum``): a running sum carried on with the next characters is the very sum it
    computes for the longer line, so the widths are the same numbers, to the last bit. Other fonts
    are measured whole by reportlab."""

    def __init__(self, font: str, size: float) -> None:
        self.font, self.size = font, size
        found = pdfmetrics.getFont(font)
        self.scale = 0.001 * size
        self.widths: dict[int, float] | None = found.face.charWidths if isinstance(found, TTFont) else None
        self.default: float = found.face.defaultWidth if isinstance(found, TTFont) else 0.0

    def grow(self, units: float, text: str) -> float:
        """``units`` (a line's running sum) carried on over ``text``."""
        if self.widths is not None:
            get, default = self.widths.get, self.default
            for ch in text:
                units += get(ord(ch), default)
        return units

    def width(self, line: str, units: float) -> float:
        """The width of ``line``, whose running sum is ``units``."""
        if self.widths is None:
            return pdfmetrics.stringWidth(line, self.font, self.size)
        return self.scale * units


def _ellipsize(line: str, font: str, size: float, width: float) -> str:
    while line and pdfmetrics.stringWidth(line + ELLIPSIS, font, size) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS


LEADING: Final = 1.18  # line height / font size


def fit_text(
    text: str,
    font: str,
    *,
    width: float,
    height: float,
    max_size: float,
    min_size: float,
    max_lines: int | None = None,
) -> tuple[float, list[str]]:
    """The largest size (0.5 pt steps, ``max_size`` down to ``min_size``) at which ``text`` wraps
    into ``width`` × ``height`` points (and ``max_lines``); at ``min_size`` the lines that fit, the
    last one cut with "…"."""
    size, lines = _fit(text, font, id(pdfmetrics.getFont(font)), width, height, max_size, min_size, max_lines)
    return size, list(lines)


@functools.lru_cache(maxsize=4096)
def _fit(
    text: str,
    font: str,
    _font_id: int,  # the registered font object: a name registered again is another font
    width: float,
    height: float,
    max_size: float,
    min_size: float,
    max_lines: int | None,
) -> tuple[float, tuple[str, ...]]:
    """``fit_text``, remembered: a batch's labels fit the same sender, shop, goods, express name
    and routing code into the same boxes page after page."""
    size = max_size
    while True:
        room = max(1, int(height // (size * LEADING)))
        if max_lines is not None:
            room = min(room, max_lines)
        lines = wrap_text(text, font, size, width)
        if len(lines) <= room:
            return size, tuple(lines)
        if size - 0.5 < min_size:
            kept = lines[:room]
            kept[-1] = _ellipsize(kept[-1], font, size, width)
            return size, tuple(kept)
        size -= 0.5


def _local_time(at: datetime) -> str:
    return (at.astimezone(BEIJING) if at.tzinfo else at).strftime("%Y-%m-%d %H:%M")


class _Label:
    """Draws one label on the current page. ``y`` values are reportlab's (points from the bottom)."""

    def __init__(self, c: Canvas, font: str, data: LabelData) -> None:
        self.c = c
        self.font = font
        self.data = data
        self.width, self.height = PAGE_SIZE
        self.left = MARGIN
        self.right = self.width - MARGIN
        self.pad = 1.5 * mm

    # drawing primitives

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        *,
        bold: bool = False,
        align: str = "left",
        color: object = black,
        char_space: float = 0.0,
    ) -> None:
        c = self.c
        w = pdfmetrics.stringWidth(text, self.font, size) + char_space * max(0, len(text) - 1)
        if align == "center":
            x -= w / 2
        elif align == "right":
            x -= w
        c.saveState()
        c.setFillColor(color)
        c.setStrokeColor(color)
        t = c.beginText(x, y)
        t.setFont(self.font, size)
        if char_space:
            t.setCharSpace(char_space)
        if bold:  # the font has no bold face: fill and stroke the outlines
            c.setLineWidth(size * 0.035)
            t.setTextRenderMode(2)
        t.textOut(text)
        c.drawText(t)
        c.restoreState()

    def block(
        self,
        x: float,
        top: float,
        text: str,
        *,
        width: float,
        height: float,
        max_size: float,
        min_size: float,
        max_lines: int | None = None,
        bold: bool = False,
    ) -> float:
        """Fitted, wrapped text from ``top`` down; returns the y under its last line."""
        size, lines = fit_text(
            text,
            self.font,
            width=width - 1,  # a hair of slack for the stroke of simulated bold
            height=height,
            max_size=max_size,
            min_size=min_size,
            max_lines=max_lines,
        )
        y = top - size * 0.95
        for line in lines:
            self.text(x, y, line, size, bold=bold)
            y -= size * LEADING
        return top - len(lines) * size * LEADING

    def line(self, x1: float, y1: float, x2: float, y2: float, width: float = 0.6) -> None:
        self.c.setLineWidth(width)
        self.c.line(x1, y1, x2, y2)

    # the label

    def draw(self) -> None:
        heights = (HEADER_MM, ROUTING_MM, BARCODE_MM, RECEIVER_MM, SENDER_MM, GOODS_MM, FOOTER_MM)
        tops = [self.height - MARGIN]
        for h in heights:
            tops.append(tops[-1] - h * mm)
        c = self.c
        c.setStrokeColor(black)
        c.setLineWidth(0.9)
        c.rect(self.left, MARGIN, self.right - self.left, self.height - 2 * MARGIN, stroke=1, fill=0)
        for y in tops[1:-1]:
            self.line(self.left, y, self.right, y)
        self.header(tops[0], tops[1])
        self.routing(tops[1], tops[2])
        self.barcode(tops[2], tops[3])
        self.party(tops[3], tops[4], self.data.receiver, receiver=True)
        self.party(tops[4], tops[5], self.data.sender, receiver=False)
        self.goods(tops[5], tops[6])
        self.footer(tops[6], tops[7])

    def header(self, top: float, bottom: float) -> None:
        inner = self.right - self.left - 2 * self.pad
        printed = pgettext("shipping label", "Printed")
        stamp = f"{printed} {_local_time(self.data.printed_at)}"
        stamp_size = 6.5
        stamp_w = pdfmetrics.stringWidth(stamp, self.font, stamp_size)
        size, lines = fit_text(
            self.data.express_name,
            self.font,
            width=inner - stamp_w - 2 * mm,
            height=top - bottom - 2,
            max_size=17,
            min_size=9,
            max_lines=1,
        )
        middle = (top + bottom) / 2
        self.text(self.left + self.pad, middle - size * 0.36, lines[0], size, bold=True)
        self.text(self.right - self.pad, middle - stamp_size * 0.36, stamp, stamp_size, align="right")

    def routing(self, top: float, bottom: float) -> None:
        right = self.right
        middle = (top + bottom) / 2
        if self.data.dest_code:
            cell = 17 * mm
            right = self.right - cell
            self.line(right, top, right, bottom)
            centre = right + cell / 2
            self.text(centre, top - 2.2 * mm - 5, pgettext("shipping label", "Destination"), 6, align="center")
            size, lines = fit_text(
                self.data.dest_code,
                self.font,
                width=cell - 2 * self.pad,
                height=20,
                max_size=12,
                min_size=6,
                max_lines=1,
            )
            self.text(centre, bottom + 2.5 * mm, lines[0], size, bold=True, align="center")
        width = right - self.left - 2 * self.pad
        size, lines = fit_text(
            self.data.routing_code or "—",
            self.font,
            width=width - 1,
            height=top - bottom - 2 * mm,
            max_size=34,
            min_size=12,
            max_lines=1,
        )
        self.text((self.left + right) / 2, middle - size * 0.36, lines[0], size, bold=True, align="center")

    def barcode(self, top: float, bottom: float) -> None:
        modules = barcode_modules(self.data.waybill_no)
        room = self.right - self.left - 2 * self.pad
        needed = len(modules) + 2 * QUIET_MODULES
        fitting = [k for k in range(MIN_MODULE_DOTS, MAX_MODULE_DOTS + 1) if needed * k * DOT <= room]
        dots = max(fitting) if fitting else None
        if dots is None:
            raise BarcodeTooLong(
                f"waybill number {self.data.waybill_no!r} needs {len(modules)} Code128 modules: "
                f"too wide for a {LABEL_WIDTH_MM} mm label at {MIN_MODULE_DOTS} dots per module"
            )
        module = dots * DOT
        bars_width = len(modules) * module
        x0 = round((self.width - bars_width) / 2 / DOT) * DOT  # bars start on a printer dot
        bar_top = top - 2 * mm
        bar_bottom = bar_top - 14 * mm
        self.c.setFillColor(black)
        i = 0
        while i < len(modules):
            if modules[i] == "1":
                j = i
                while j < len(modules) and modules[j] == "1":
                    j += 1
                self.c.rect(x0 + i * module, bar_bottom, (j - i) * module, bar_top - bar_bottom, stroke=0, fill=1)
                i = j
            else:
                i += 1
        number = self.data.waybill_no
        size, space = 11.0, 1.2
        while size > 7 and pdfmetrics.stringWidth(number, self.font, size) + space * (len(number) - 1) > room:
            size -= 0.5
            space = 0.6
        self.text(self.width / 2, bottom + 1.8 * mm, number, size, bold=True, align="center", char_space=space)

    def party(self, top: float, bottom: float, party: Party, *, receiver: bool) -> None:
        mark_w = 8 * mm
        c = self.c
        mark = pgettext("shipping label", "To") if receiver else pgettext("shipping label", "From")
        mark_size = 16.0 if receiver else 12.0
        while mark_size > 6 and pdfmetrics.stringWidth(mark, self.font, mark_size) > mark_w - 2:
            mark_size -= 0.5
        mark_x = self.left + mark_w / 2
        mark_y = (top + bottom) / 2 - mark_size * 0.36
        if receiver:  # white on black, as on carriers' own labels
            c.setFillColor(black)
            c.rect(self.left, bottom, mark_w, top - bottom, stroke=0, fill=1)
            self.text(mark_x, mark_y, mark, mark_size, bold=True, align="center", color=white)
        else:
            self.line(self.left + mark_w, top, self.left + mark_w, bottom)
            self.text(mark_x, mark_y, mark, mark_size, bold=True, align="center")
        x = self.left + mark_w + self.pad
        width = self.right - self.pad - x
        room = top - bottom - 2 * self.pad
        if receiver:
            y = self.name_and_phone(x, top - self.pad, party, width=width, height=room * 0.4, max_size=13, min_size=9)
            self.block(
                x,
                y - 0.6 * mm,
                party.full_address,
                width=width,
                height=y - 0.6 * mm - (bottom + self.pad),
                max_size=12,
                min_size=7,
                bold=True,
            )
        else:
            y = self.name_and_phone(x, top - self.pad, party, width=width, height=room * 0.45, max_size=9, min_size=7)
            self.block(
                x,
                y - 0.3 * mm,
                party.full_address,
                width=width,
                height=y - 0.3 * mm - (bottom + self.pad),
                max_size=8,
                min_size=6,
            )

    def name_and_phone(
        self, x: float, top: float, party: Party, *, width: float, height: float, max_size: float, min_size: float
    ) -> float:
        """Name and phone on at most two lines; a name too long for that is cut, the phone never
        (the courier calls it). Returns the y under the last line."""
        bold = max_size > 10
        size, lines = fit_text(
            f"{party.name}  {party.mobile}",
            self.font,
            width=width - 1,
            height=height,
            max_size=max_size,
            min_size=min_size,
            max_lines=2,
        )
        if lines[-1].endswith(ELLIPSIS):  # too long: the name's first line, cut, then the phone whole
            name = _ellipsize(wrap_text(party.name, self.font, size, width - 1)[0], self.font, size, width - 1)
            phone = wrap_text(party.mobile, self.font, size, width - 1) or [""]
            lines = [name, phone[0] if len(phone) == 1 else _ellipsize(phone[0], self.font, size, width - 1)]
        y = top - size * 0.95
        for line in lines:
            self.text(x, y, line, size, bold=bold)
            y -= size * LEADING
        return top - len(lines) * size * LEADING

    def goods(self, top: float, bottom: float) -> None:
        summary = "；".join(f"{name} ×{quantity}" for name, quantity in self.data.goods)
        caption = pgettext("shipping label", "Goods")
        text = f"{caption}：{summary}"
        x = self.left + self.pad
        self.block(
            x,
            top - self.pad,
            text,
            width=self.right - self.pad - x,
            height=top - bottom - 2 * self.pad,
            max_size=9,
            min_size=6.5,
        )

    def footer(self, top: float, bottom: float) -> None:
        d = self.data
        split = self.right - 21 * mm
        self.line(split, top, split, bottom)
        self.text(split + self.pad, top - self.pad - 6, pgettext("shipping label", "Signature / date"), 6)
        x = self.left + self.pad
        width = split - self.pad - x
        parcel = pgettext("shipping label", "Parcel")
        shop = pgettext("shipping label", "Shop")
        y = top - self.pad
        y = self.block(
            x,
            y,
            f"{parcel}：{d.parcel_code}",
            width=width,
            height=12,
            max_size=8,
            min_size=6,
            max_lines=1,
            bold=True,
        )
        y = self.block(x, y, self._orders_text(width), width=width, height=20, max_size=7, min_size=6, max_lines=2)
        self.block(
            x,
            y,
            f"{shop}：{d.merchant_name}",
            width=width,
            height=max(8.0, y - bottom - self.pad),
            max_size=7,
            min_size=6,
            max_lines=1,
        )

    def _orders_text(self, width: float) -> str:
        """The order numbers; when they do not fit two lines, the first ones, "…" and the count."""
        codes = self.data.order_codes
        caption = pgettext("shipping label", "Orders")
        for shown in range(len(codes), 0, -1):
            text = f"{caption}：{'，'.join(codes[:shown])}"
            if shown < len(codes):
                total = npgettext("shipping label", "%(count)d order", "%(count)d orders", len(codes))
                text += f"{ELLIPSIS}（{total % {'count': len(codes)}}）"
            if len(wrap_text(text, self.font, 6, width - 1)) <= 2:
                return text
        return f"{caption}：{ELLIPSIS}"


# --- picking list ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PickLine:
    """One order line to pick: which SKU, where it is stored, how many, for which order and parcel."""

    sku_code: str
    product_name: str
    option: str  # the SKU's spec (规格), e.g. "色号 01 / 3.5 g"
    location: str  # 库位; "" when the SKU has none (such rows come last)
    quantity: int
    order_code: str
    parcel_code: str


@dataclass(frozen=True, kw_only=True)
class PickRow:
    """One row of the picking list: a SKU at one location, with the lines for it added up."""

    location: str
    sku_code: str
    product_name: str
    option: str
    quantity: int
    order_codes: tuple[str, ...] = field(default=())
    parcel_codes: tuple[str, ...] = field(default=())

    @property
    def orders(self) -> int:
        return len(self.order_codes)


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key comparing digit runs as numbers (A-2 before A-10)."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", text))


def picking_rows(lines: Iterable[PickLine]) -> list[PickRow]:
    """Order lines grouped per (location, SKU code): quantities added up, distinct orders and
    parcels listed (sorted); sorted by location, then SKU code (digit runs as numbers), lines
    without a location last. The product name and option are the first line's."""
    groups: dict[tuple[str, str], list[PickLine]] = {}
    for line in lines:
        groups.setdefault((line.location, line.sku_code), []).append(line)
    rows = [
        PickRow(
            location=location,
            sku_code=sku_code,
            product_name=group[0].product_name,
            option=group[0].option,
            quantity=sum(line.quantity for line in group),
            order_codes=tuple(sorted({line.order_code for line in group}, key=_natural)),
            parcel_codes=tuple(sorted({line.parcel_code for line in group}, key=_natural)),
        )
        for (location, sku_code), group in groups.items()
    ]
    rows.sort(key=lambda row: (row.location == "", _natural(row.location), _natural(row.sku_code)))
    return rows


def picking_headers() -> list[str]:
    return [_("Location"), _("SKU code"), _("Product"), _("Option"), _("Quantity"), _("Orders"), _("Parcels")]


def _values(row: PickRow) -> list[str | int]:
    return [
        row.location,
        row.sku_code,
        row.product_name,
        row.option,
        row.quantity,
        row.orders,
        ", ".join(row.parcel_codes),
    ]


def picking_list_csv(rows: Sequence[PickRow]) -> bytes:
    """The picking list as CSV (UTF-8 with BOM): the header, then one line per row (no total)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(picking_headers())
    for row in rows:
        writer.writerow([safe_cell(v) for v in _values(row)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _display_width(value: object) -> int:
    """Columns a text takes in a spreadsheet: a CJK (wide) character counts two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(value))


def picking_list_xlsx(rows: Sequence[PickRow], *, title: str, generated_at: datetime) -> bytes:
    """The picking list as an XLSX workbook: bold frozen header (repeated on printed pages), one
    line per row, a bold total row (quantity, distinct orders, distinct parcels) when there are
    rows; ``title`` and ``generated_at`` (shown in the current time zone) in the printed page
    header and the document properties."""
    from openpyxl import Workbook  # imported here: only exports need it
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    when = timezone.localtime(generated_at) if timezone.is_aware(generated_at) else generated_at
    stamp = when.strftime("%Y-%m-%d %H:%M")
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook always has its first sheet
    ws.title = _("Picking list")
    headers = picking_headers()
    ws.append(headers)
    body = [_values(row) for row in rows]
    for values in body:
        ws.append([safe_cell(v) for v in values])
    bold = Font(bold=True)
    for cell in ws[1]:
        cell.font = bold
    if rows:
        ws.append(
            [
                _("Total"),
                "",
                "",
                "",
                sum(row.quantity for row in rows),
                len({code for row in rows for code in row.order_codes}),
                len({code for row in rows for code in row.parcel_codes}),
            ]
        )
        for cell in ws[ws.max_row]:
            cell.font = bold
    wrap = Alignment(wrap_text=True, vertical="top")
    for cells in ws.iter_rows(min_row=2, min_col=len(headers), max_col=len(headers)):
        for cell in cells:
            cell.alignment = wrap
    for index, header in enumerate(headers, start=1):
        widest = max([_display_width(header), *(_display_width(values[index - 1]) for values in body)])
        ws.column_dimensions[get_column_letter(index)].width = min(max(widest + 2, 8), 48)
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.oddHeader.center.text = title.replace("&", "&&")  # & starts a header code
    ws.oddHeader.right.text = stamp
    wb.properties.title = title
    wb.properties.created = when.replace(tzinfo=None)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
