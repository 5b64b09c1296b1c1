"""Cells for files people open in a spreadsheet (CSV, XLSX): text that must never run as a formula.

Pure: no Django. Used by every export (orders, picking lists)."""

from __future__ import annotations

from typing import Any, Final

# A cell starting with one of these is read as a formula by Excel, LibreOffice or Google Sheets
# (a tab or carriage return too, when the file is imported): CSV injection.
FORMULA_STARTS: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text, never runs: ``'`` before a leading ``= + - @``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
