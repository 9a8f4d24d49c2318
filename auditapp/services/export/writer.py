"""Writing sheets: columns, styles, safe text cells, the streaming sheet writer.

Safety (SECURITY.md item 16): openpyxl turns any string starting with "=" into a formula,
so every string starting with a formula trigger (services/csvfile.FORMULA_PREFIXES: = + -
@ tab CR LF and the full-width ＝ ＋ － ＠) is written as a text cell with the quote-prefix
style, whoever wrote it (user text, names, file names). CSV files and the workbook share
that one list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from auditapp.services.csvfile import FORMULA_PREFIXES

if TYPE_CHECKING:
    from auditapp.services.export.context import ExportContext

MAX_CELL_CHARS = 32767  # Excel's limit for one cell
TRIGGERS = frozenset(p[0] for p in FORMULA_PREFIXES)
_ILLEGAL = ILLEGAL_CHARACTERS_RE.search

# Fill colours of status cells (conditional formatting): good, warning, bad, in progress, muted.
GOOD, WARN, BAD, INFO, MUTED = "D9EAD3", "FFF2CC", "F4CCCC", "CFE2F3", "EEEEEE"


@dataclass(frozen=True)
class Column:
    """A column of a sheet: header (in the export's language), width, status colours."""

    header: str
    width: float = 14
    colours: dict[str, str] | None = None  # cell text -> fill colour (conditional formatting)


@dataclass(frozen=True)
class Link:
    """A value written as a hyperlink to a relative path (the Evidence sheet's bundle path)."""

    path: str


@dataclass(frozen=True)
class Sheet:
    """A sheet of the workbook: its title, columns, rows and (for the progress bar) how
    many rows it will hold.

    `rows` yields sequences of plain values (str, int, date, datetime, None, Link); strings
    are made safe by the writer. Rows are read through `ctx.batches` or `ctx.read()` so no
    transaction stays open while they are written.
    """

    title: str
    columns: Callable[[ExportContext], list[Column]]
    rows: Callable[[ExportContext], Iterable[Sequence[Any]]]
    count: Callable[[ExportContext], int]


_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill(start_color="3B5B7A", end_color="3B5B7A", fill_type="solid")
_HEADER_ALIGN = Alignment(wrap_text=True, vertical="top")
TITLE_FONT = Font(bold=True, size=14)
BOLD = Font(bold=True)
_LINK_FONT = Font(color="0563C1", underline="single")


def _clean(value: str) -> str:
    """Text that fits an Excel cell: XML-illegal control characters replaced, length capped."""
    if _ILLEGAL(value):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if len(value) > MAX_CELL_CHARS:
        value = value[: MAX_CELL_CHARS - 1] + "…"
    return value


def text_cell(ws, value: str) -> WriteOnlyCell:
    """A cell that holds `value` as text, never as a formula (SECURITY.md item 16)."""
    value = _clean(value)
    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"  # openpyxl made it a formula if it starts with "="
    if value[:1] in TRIGGERS:
        cell.quotePrefix = True  # Excel and LibreOffice show it as typed, even when edited
    return cell


class SheetWriter:
    """One streaming sheet: a styled header row, widths, frozen panes, filter, print titles,
    status colours; every string written as safe text, aware times in the export's zone."""

    def __init__(self, wb: Workbook, title: str, columns: list[Column], tz: ZoneInfo):
        self.ws = wb.create_sheet(title)
        self.title = title
        self.columns = columns
        self.rows = 0
        self._tz = tz
        self._started = False

    def start(self, header: bool = True) -> None:
        """Widths and panes go before the first row (the streaming writer emits them then)."""
        ws = self.ws
        for i, col in enumerate(self.columns, 1):
            ws.column_dimensions[get_column_letter(i)].width = col.width
        ws.page_setup.orientation = "landscape"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        if header:
            ws.freeze_panes = "A2"
            ws.print_title_rows = "1:1"
            ws.append([self.header_cell(c.header) for c in self.columns])
        self._started = True

    def header_cell(self, value: str) -> WriteOnlyCell:
        """A header cell: bold white text on the header colour."""
        cell = text_cell(self.ws, value)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = _HEADER_ALIGN
        return cell

    def convert(self, value):
        """A value ready for the sheet: risky or odd strings as safe text cells, aware
        datetimes as local times (Excel has no time zones), links as hyperlinks."""
        if isinstance(value, str):
            if not value:
                return None
            if value[0] in TRIGGERS or len(value) > MAX_CELL_CHARS or _ILLEGAL(value):
                return text_cell(self.ws, value)
            return value
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(self._tz).replace(tzinfo=None)
        if isinstance(value, Link):
            cell = text_cell(self.ws, value.path)
            cell.hyperlink = quote(value.path)
            cell.font = _LINK_FONT
            return cell
        return value

    def append(self, values: Sequence[Any]) -> None:
        """Write one data row."""
        if not self._started:
            self.start()
        convert = self.convert
        self.ws.append([convert(v) for v in values])
        self.rows += 1

    def append_cells(self, cells: Sequence[Any]) -> None:
        """Write a row of prepared cells (already safe)."""
        if not self._started:
            self.start()
        self.ws.append(list(cells))

    def finish(self) -> int:
        """Filter over the header and rows, status colours; returns the data rows written."""
        if not self._started:
            self.start()
        last_col = get_column_letter(len(self.columns))
        last_row = self.rows + 1
        self.ws.auto_filter.ref = f"A1:{last_col}{last_row}"
        if self.rows:
            for i, col in enumerate(self.columns, 1):
                for value, colour in (col.colours or {}).items():
                    letter = get_column_letter(i)
                    fill = PatternFill(start_color=colour, end_color=colour, fill_type="solid")
                    formula = '"' + value.replace('"', '""') + '"'
                    self.ws.conditional_formatting.add(
                        f"{letter}2:{letter}{last_row}",
                        CellIsRule(operator="equal", formula=[formula], fill=fill),
                    )
        return self.rows
