"""CSV cells that a spreadsheet will not run: formula injection (CWE-1236) escaped reversibly.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets (``=HYPERLINK(...)`` in an object id or a finding title). Such
a cell gets a leading apostrophe, which spreadsheets show as "text" and hide; a cell that already
starts with an apostrophe gets one more, so `unescape_cell` restores every value exactly (the
audit export's verification reads the cells back).
"""

from __future__ import annotations

from typing import Any

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def escape_cell(value: Any) -> Any:
    """The value a CSV writer should write (non-strings unchanged)."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def unescape_cell(text: str) -> str:
    """The value `escape_cell` was given, from the cell it wrote."""
    if text.startswith("'") and text[1:].startswith(_FORMULA_STARTS):
        return text[1:]
    return text
