"""The CJK font of the PDFs the system draws (shipping labels, report exports).

WenQuanYi Zen Hei (Debian ``fonts-wqy-zenhei``), embedded as a subset: reportlab reads TrueType
outlines only, not the CFF outlines of Noto CJK. A missing font file raises :class:`FontMissing`
(never boxes in place of Chinese). The font is registered with reportlab once per process.

Pure: no Django."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Final

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_FILE: Path = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
FONT_PACKAGE: Final = "fonts-wqy-zenhei"
FONT_NAME: Final = "WenQuanYiZenHei"


class FontMissing(RuntimeError):
    """The CJK font the PDFs are set in is not installed on this machine."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"PDF documents need the font {path}, which is missing: install the Debian package "
            f"{FONT_PACKAGE} (apt-get install -y {FONT_PACKAGE}; ./test installs it when run as root)"
        )
        self.path = path


_font_lock = threading.Lock()
_fonts_registered: set[str] = set()  # font files registered with reportlab in this process


def cjk_font() -> str:
    """The registered name of the CJK font; registers it on first use (once per process).
    Raises :class:`FontMissing` when the font file is not installed."""
    path = FONT_FILE
    with _font_lock:
        if str(path) not in _fonts_registered:
            if not path.is_file():
                raise FontMissing(path)
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
            _fonts_registered.add(str(path))
    return FONT_NAME
