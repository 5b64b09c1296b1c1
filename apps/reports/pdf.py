"""The post-show report as a PDF (A4), its charts drawn server-side with ``reportlab.graphics``.

Top to bottom: the show, shop, streamer and time; the headline figures; orders and payments by
minute (line chart); sell-through per listing (cumulative units taken against seconds since the
listing opened, one line per listing) and the listings table; GMV by province (bars, top 10) and
the provinces with their top cities; GMV by channel (bars) and the channels table; buyers,
categories and risk control. Text is set in the CJK font of :mod:`apps.core.fonts` (embedded), in
the job's language. Charts plot floats (a drawing); every amount, count and rate printed is the exact
figure (seconds to a tenth)."""

from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from apps.core.fonts import cjk_font

from .exports import Cell, Money, Rate, cell_text, channel_name, session_sections, summary_rows
from .models import SessionReport

MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN  # the frame's width
CHART_HEIGHT = 62 * mm
INK = colors.HexColor("#1d1d28")
MUTED = colors.HexColor("#6b6b7b")
RULE = colors.HexColor("#e3e3ea")
HEAD = colors.HexColor("#f4f4f8")
SERIES = [
    colors.HexColor(c)
    for c in ("#ff2d55", "#7c5cff", "#00a870", "#ff9f1a", "#1f8fff", "#e0457b", "#5b6b00", "#8b5a2b", "#00838f",
              "#b0003a", "#3949ab", "#6d4c41")
]  # fmt: skip
TOP_REGIONS = 10
# The listings table's columns (keys of ``exports.listings_section``) and their shares of the width:
# the page is too narrow for all of the export's; the SKU code, category, price, sold-out refusals
# and paid rate are in the CSV and XLSX.
LISTING_COLUMNS = (
    ("item", 0.22), ("quota", 0.07), ("orders", 0.08), ("attempts", 0.09), ("conversion", 0.09), ("paid", 0.08),
    ("units", 0.07), ("gmv", 0.15), ("sold_out_s", 0.15),
)  # fmt: skip
MAX_CURVES = len(SERIES)


def _text(value: Cell) -> str:
    if isinstance(value, float):  # seconds: to a tenth
        return f"{value:,.1f}"
    return str(cell_text(value, percent_places="0.1", yuan="¥", thousands=",", none="—"))


class _Styles:
    def __init__(self, font: str) -> None:
        self.font = font
        self.title = ParagraphStyle("title", fontName=font, fontSize=18, leading=24, textColor=INK)
        self.meta = ParagraphStyle("meta", fontName=font, fontSize=9, leading=13, textColor=MUTED)
        self.h2 = ParagraphStyle("h2", fontName=font, fontSize=12.5, leading=18, textColor=INK, spaceBefore=10,
                                 spaceAfter=4)  # fmt: skip
        self.cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10, textColor=INK)
        self.cell_right = ParagraphStyle("cell_right", parent=self.cell, alignment=TA_RIGHT)  # a number's header
        self.kpi_label = ParagraphStyle("kpi_label", fontName=font, fontSize=8, leading=10, textColor=MUTED)
        self.kpi_value = ParagraphStyle("kpi_value", fontName=font, fontSize=13, leading=16, textColor=INK)
        self.note = ParagraphStyle("note", fontName=font, fontSize=8.5, leading=12, textColor=MUTED)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(st: _Styles, headers: list[str], rows: list[list[Cell]], widths: list[float] | None = None) -> Table:
    """A table: numbers right-aligned, text wrapped, a shaded header repeated on each page."""
    numeric = [bool(rows) and all(isinstance(r[col], int | float | Decimal) or r[col] is None for r in rows)
               for col in range(len(headers))]  # fmt: skip
    body = [[Paragraph(_esc(h), st.cell_right if numeric[col] else st.cell) for col, h in enumerate(headers)]]
    for row in rows:
        body.append(
            [
                _text(v) if v is None or isinstance(v, int | float | Decimal) else Paragraph(_esc(_text(v)), st.cell)
                for v in row
            ]
        )
    table = Table(body, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONTNAME", (0, 0), (-1, -1), st.font),
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    style += [("ALIGN", (col, 1), (col, -1), "RIGHT") for col in range(len(headers)) if numeric[col]]
    table.setStyle(TableStyle(style))
    return table


def _empty(st: _Styles, text: str) -> Paragraph:
    return Paragraph(_esc(text), st.note)


def _axis_fonts(chart: Any, font: str) -> None:
    for axis in (getattr(chart, "xValueAxis", None), getattr(chart, "yValueAxis", None),
                 getattr(chart, "categoryAxis", None), getattr(chart, "valueAxis", None)):  # fmt: skip
        if axis is not None:
            axis.labels.fontName = font
            axis.labels.fontSize = 7
            axis.strokeColor = MUTED


def _legend(font: str, pairs: list[tuple[Any, str]], x: float, y: float, columns: int = 1) -> Legend:
    legend = Legend()
    legend.fontName = font
    legend.fontSize = 7
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.colorNamePairs = pairs
    legend.columnMaximum = max(1, -(-len(pairs) // columns))
    legend.dx, legend.dy, legend.deltay = 6, 6, 9
    legend.strokeWidth = 0
    return legend


def nice_step(top: float, ticks: int = 6) -> float:
    """A whole, round step (1, 2, 5 × 10ⁿ) giving at most ``ticks`` ticks up to ``top``: counts and
    seconds are labelled without repeats."""
    raw = max(top / ticks, 1)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def line_chart(
    font: str, series: list[list[tuple[float, float]]], names: list[str], x_title: str, *, legend_columns: int = 1
) -> Drawing:
    """A line chart of ``series`` ((x, y) points each), a legend of ``names`` on the right."""
    legend_w = 45 * mm * legend_columns
    d = Drawing(WIDTH, CHART_HEIGHT)
    lp = LinePlot()
    lp.x, lp.y = 26, 26
    lp.width, lp.height = WIDTH - legend_w - 36, CHART_HEIGHT - 36
    lp.data = series
    for i in range(len(series)):
        lp.lines[i].strokeColor = SERIES[i % len(SERIES)]
        lp.lines[i].strokeWidth = 1.3
    lp.xValueAxis.valueMin = 0
    lp.yValueAxis.valueMin = 0
    for axis, values in ((lp.xValueAxis, [p[0] for line in series for p in line]),
                         (lp.yValueAxis, [p[1] for line in series for p in line])):  # fmt: skip
        axis.valueStep = nice_step(max(values, default=0))
    lp.xValueAxis.labelTextFormat = "%d"
    lp.yValueAxis.labelTextFormat = "%d"
    lp.yValueAxis.visibleGrid = True
    lp.yValueAxis.gridStrokeColor = RULE
    _axis_fonts(lp, font)
    d.add(lp)
    d.add(String(lp.x + lp.width / 2, 4, x_title, fontName=font, fontSize=7, fillColor=MUTED, textAnchor="middle"))
    pairs = [(SERIES[i % len(SERIES)], name) for i, name in enumerate(names)]
    d.add(_legend(font, pairs, lp.x + lp.width + 14, CHART_HEIGHT - 8, legend_columns))
    return d


def bar_chart(font: str, names: list[str], values: list[float], *, horizontal: bool) -> Drawing:
    """GMV bars: horizontal (largest on top) for places, vertical for channels."""
    height = max(CHART_HEIGHT * 0.7, 14 * len(names) + 30) if horizontal else CHART_HEIGHT * 0.8
    d = Drawing(WIDTH, height)
    chart: HorizontalBarChart | VerticalBarChart
    if horizontal:
        chart = HorizontalBarChart()
        chart.x, chart.y = 70, 18
        chart.width, chart.height = WIDTH - 90, height - 26
        chart.data = [list(reversed(values))]
        chart.categoryAxis.categoryNames = list(reversed(names))
    else:
        chart = VerticalBarChart()
        chart.x, chart.y = 46, 22
        chart.width, chart.height = WIDTH - 60, height - 30
        chart.data = [values]
        chart.categoryAxis.categoryNames = names
    chart.bars[0].fillColor = SERIES[0]
    chart.bars[0].strokeColor = None
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labelTextFormat = "¥%d"
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = RULE
    chart.barLabelFormat = lambda v: f"¥{v:,.2f}"
    chart.barLabels.fontName = font
    chart.barLabels.fontSize = 6.5
    chart.barLabels.boxAnchor = "w" if horizontal else "s"
    chart.barLabels.dx, chart.barLabels.dy = (3, 0) if horizontal else (0, 2)
    _axis_fonts(chart, font)
    d.add(chart)
    return d


def _kpis(st: _Styles, report: SessionReport) -> Table:
    f = report.figures
    cards = [
        (_("GMV (paid)"), _text(Money(f["gmv"]))),
        (_("Orders"), str(f["orders"])),
        (_("Paid"), f"{f['paid']} · {_text(Rate(f['rates']['paid']))}"),
        (_("Units"), str(f["units"])),
        (_("Average basket"), _text(Money(f["avg_basket"]))),
        (_("Refunds"), _text(Money(f["refunds"]["amount"]))),
        (_("Net"), _text(Money(f["net"]))),
        (_("Not paid in time"), f"{f['expired']} · {_text(Rate(f['rates']['expired']))}"),
    ]
    cells = [[Paragraph(_esc(label), st.kpi_label), Paragraph(_esc(value), st.kpi_value)] for label, value in cards]
    grid = [cells[i : i + 4] for i in range(0, len(cells), 4)]
    table = Table([[Table([[a], [b]]) for a, b in row] for row in grid], colWidths=[WIDTH / 4] * 4)
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, RULE),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, RULE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _blocks(st: _Styles, report: SessionReport) -> list[Callable[[], list[Flowable]]]:
    f = report.figures
    font = st.font
    sections = {s.key: s for s in session_sections(report)}

    def header() -> list[Flowable]:
        summary = {row[0]: row[1] for row in summary_rows(report)}
        meta = " · ".join(
            str(v)
            for v in (
                report.merchant.name,
                report.streamer,
                summary[_("Started")],
                _("%(h)s h on air") % {"h": Decimal(report.hours_on_air).quantize(Decimal("0.1"))},
            )
            if v
        )
        return [
            Paragraph(_esc(_("Post-show report: %(show)s") % {"show": report.session.title}), st.title),
            Paragraph(_esc(meta), st.meta),
            Paragraph(_esc(_("Figures as of %(at)s") % {"at": summary[_("Figures as of")]}), st.meta),
            Spacer(1, 4 * mm),
            _kpis(st, report),
        ]

    def minutes() -> list[Flowable]:
        out: list[Flowable] = [Paragraph(_esc(_("Orders by minute")), st.h2)]
        rows = f["by_minute"]
        if not rows:
            return [*out, _empty(st, _("No orders."))]
        series = [[(m["minute"], m["orders"]) for m in rows], [(m["minute"], m["paid"]) for m in rows]]
        out.append(line_chart(font, series, [_("Orders"), _("Paid")], _("Minutes since the show started")))
        return [KeepTogether(out)]

    def listings() -> list[Flowable]:
        out: list[Flowable] = [Paragraph(_esc(_("Listings: sell-through and conversion")), st.h2)]
        curves = [li for li in f["listings"] if li["curve"]][:MAX_CURVES]
        if curves:
            out.append(
                line_chart(
                    font,
                    [[(p[0], p[1]) for p in li["curve"]] for li in curves],
                    [li["name"][:12] for li in curves],
                    _("Seconds since the listing opened"),
                    legend_columns=1 if len(curves) <= 6 else 2,
                )
            )
        out = [KeepTogether(out)]
        s = sections["listings"]
        if not s.rows:
            return [*out, _empty(st, _("No listings in this show."))]
        shown = s.pick(*(key for key, _share in LISTING_COLUMNS))
        widths = [WIDTH * share for _key, share in LISTING_COLUMNS]
        out.append(_table(st, shown.headers, shown.rows, widths))
        return out

    def regions() -> list[Flowable]:
        out: list[Flowable] = [Paragraph(_esc(_("Where buyers are: GMV by province (top 10)")), st.h2)]
        top = f["regions"][:TOP_REGIONS]
        if not top:
            return [*out, _empty(st, _("No paid orders."))]
        names = [sections["provinces"].rows[i][0] for i in range(len(top))]
        out = [
            KeepTogether(
                [*out, bar_chart(font, [str(n) for n in names], [float(r["gmv"]) for r in top], horizontal=True)]
            )
        ]
        rows: list[list[Cell]] = [
            [names[i], "、".join(f"{c[1]} ({c[2]})" for c in sections["cities"].rows if c[0] == names[i])[:80],
             r["paid"], Money(r["gmv"])]
            for i, r in enumerate(top)
        ]  # fmt: skip
        headers = [_("Province"), _("Top cities"), _("Paid"), _("GMV (¥)")]
        out.append(_table(st, headers, rows, [WIDTH * 0.18, WIDTH * 0.52, WIDTH * 0.12, WIDTH * 0.18]))
        return out

    def channels() -> list[Flowable]:
        out: list[Flowable] = [Paragraph(_esc(_("Channels: GMV by channel")), st.h2)]
        if not f["channels"]:
            return [*out, _empty(st, _("No orders."))]
        names = [channel_name(c["channel"]) for c in f["channels"]]
        out = [KeepTogether([*out, bar_chart(font, names, [float(c["gmv"]) for c in f["channels"]], horizontal=False)])]
        s = sections["channels"]
        out.append(_table(st, s.headers, s.rows, [WIDTH * 0.4, WIDTH * 0.2, WIDTH * 0.2, WIDTH * 0.2]))
        return out

    def buyers_and_risk() -> list[Flowable]:
        out: list[Flowable] = []
        for key in ("buyers", "categories", "risk"):
            s = sections[key]
            part: list[Flowable] = [Paragraph(_esc(s.title), st.h2)]
            widths = [WIDTH * 0.45, WIDTH * 0.2] if len(s.headers) == 2 else None
            part.append(_table(st, s.headers, s.rows, widths) if s.rows else _empty(st, _("No paid orders.")))
            out.append(KeepTogether(part))
        return out

    return [header, minutes, listings, regions, channels, buyers_and_risk]


def report_pdf(report: SessionReport, *, progress: Callable[[int, int], None]) -> bytes:
    """The report as PDF bytes; ``progress(done, total)`` after each part drawn (the last part is
    the layout of the pages)."""
    font = cjk_font()
    st = _Styles(font)
    blocks = _blocks(st, report)
    total = len(blocks) + 1
    progress(0, total)
    story: list[Flowable] = []
    for i, block in enumerate(blocks, start=1):
        story.extend(block())
        progress(i, total)
    title = _("Post-show report: %(show)s") % {"show": report.session.title}

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, 9 * mm, title[:90])
        canvas.drawRightString(A4[0] - MARGIN, 9 * mm, str(doc.page))
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=title,
        author=report.merchant.name,
        creator="livecommerce",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    progress(total, total)
    return buf.getvalue()
