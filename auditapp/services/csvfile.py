"""CSV files: reading uploads (UTF-8 with or without BOM, or CP932, streamed by line), the
one import skeleton every CSV import runs on, and cells safe from formula injection.

The skeleton (`check_file`): read the header → check each row → collect every problem as
a `RowError` ("line N: column: problem") → the caller writes only when `may_write`: a
readable file whose rows are all good, or, with skip_invalid, the good rows of a
readable file. A file that cannot be read as a whole is never written.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Generic, TypeVar

ENCODINGS = {"utf-8": "utf-8-sig", "cp932": "cp932"}
MAX_FIELD_CHARS = 10_000


# The full-width forms count too: Japanese spreadsheet programs read "＝1+1" as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def csv_safe(value: str) -> str:
    """A cell value that spreadsheet programs will not run as a formula (OWASP CSV rule)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


@dataclass
class RowError:
    """One problem in one line of a CSV file."""

    line: int
    column: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.problem}"


class CsvFileError(Exception):
    """The file as a whole cannot be read (encoding, empty, header); `.reason` says why."""

    def __init__(self, reason: str, line: int = 1):
        super().__init__(f"line {line}: {reason}")
        self.reason = reason
        self.line = line

    def row_error(self) -> RowError:
        """The problem as the one error of the file ("line N: file: reason")."""
        return RowError(self.line, "file", self.reason)


class RowInvalid(Exception):
    """Raised by a row check: the row's problems, as (column, problem) pairs."""

    def __init__(self, *problems: tuple[str, str]):
        super().__init__("; ".join(f"{column}: {problem}" for column, problem in problems))
        self.problems = problems


@dataclass
class CsvRows:
    """A CSV file's header and its rows: (line, row) pairs, or a RowError for a row of the
    wrong width."""

    header: list[str]
    rows: Iterator[tuple[int, dict[str, str]] | RowError]


def read_rows(
    stream: BinaryIO,
    *,
    encoding: str,
    required: Collection[str],
    optional: Collection[str] = frozenset(),
) -> CsvRows:
    """Open a CSV byte stream: check the header, then yield rows lazily with line numbers.

    Raises CsvFileError for an unknown encoding, undecodable bytes (with a hint to use
    cp932 for Japanese Excel files), an empty file, or a header missing columns; the rows
    iterator raises it for a line the CSV reader cannot parse.
    """
    if encoding not in ENCODINGS:
        raise CsvFileError(f"unknown encoding {encoding!r} (use utf-8 or cp932)")
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(_decoded_lines(stream, encoding))
    header = _header(reader, set(required), set(optional))
    return CsvRows(header, _rows(reader, header))


def _decoded_lines(stream: BinaryIO, encoding: str) -> Iterator[str]:
    """The stream's lines as text; a byte that does not decode fails on its own line."""
    hint = (
        "the file is not valid UTF-8; if it was saved by Japanese Excel, use --encoding cp932"
        if encoding == "utf-8"
        else "the file is not valid CP932; if it is UTF-8, use --encoding utf-8"
    )
    # Decode line by line (b"\n" never occurs inside a UTF-8 or CP932 character), so a
    # bad byte is reported on its own line and the file is streamed, never held whole.
    for number, raw in enumerate(stream, start=1):
        codec = ENCODINGS[encoding] if number == 1 else encoding
        try:
            yield raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise CsvFileError(hint, number) from exc


def _header(reader, required: set[str], optional: set[str]) -> list[str]:
    """The header's column names (lower case): every required one, no unknown or repeated."""
    try:
        header_row = next(reader, None)
    except csv.Error as exc:
        raise CsvFileError(str(exc), reader.line_num) from exc
    if header_row is None or not any(h.strip() for h in header_row):
        raise CsvFileError("the file is empty (expected a header line)")
    header = [h.strip().lower() for h in header_row]
    missing = sorted(required - set(header))
    if missing:
        raise CsvFileError(f"missing column(s): {', '.join(missing)}")
    unknown = sorted(set(header) - required - optional)
    if unknown:
        raise CsvFileError(f"unknown column(s): {', '.join(unknown)}")
    if len(set(header)) != len(header):
        raise CsvFileError("a column name appears twice in the header")
    return header


def _rows(reader, header: list[str]) -> Iterator[tuple[int, dict[str, str]] | RowError]:
    """The data rows by physical line; blank lines skipped, wrong widths as RowErrors."""
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvFileError(str(exc), reader.line_num) from exc
        if not any(cell.strip() for cell in raw):
            continue  # blank lines are allowed (Excel adds them)
        line = reader.line_num
        if len(raw) != len(header):
            yield RowError(line, "row", f"expected {len(header)} columns, found {len(raw)}")
            continue
        yield line, dict(zip(header, raw, strict=True))


# The import skeleton ----------------------------------------------------------------------

T = TypeVar("T")


@dataclass
class CheckedFile(Generic[T]):
    """A checked CSV file: its header, the good rows' checked values with their lines,
    every problem found, and whether the file could be read as a whole."""

    header: list[str] = field(default_factory=list)
    rows: list[tuple[int, T]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    readable: bool = True

    def may_write(self, skip_invalid: bool) -> bool:
        """True when the good rows may be written: no problem at all, or only problems of
        single rows and skip_invalid. A file refused as a whole is never written."""
        return self.readable and (skip_invalid or not self.errors)


def check_file(
    stream: BinaryIO,
    *,
    encoding: str,
    required: Collection[str],
    optional: Collection[str] = frozenset(),
    check_row: Callable[[int, dict[str, str]], T],
    check_header: Callable[[list[str]], None] | None = None,
) -> CheckedFile[T]:
    """Read a CSV import file and check every row, collecting every problem.

    `check_header(header)` may raise CsvFileError (a rule across columns); `check_row(line,
    row)` returns the row's checked value or raises RowInvalid with its problems. Nothing
    here writes; the caller writes `rows` when `may_write(skip_invalid)`.
    """
    checked: CheckedFile[T] = CheckedFile()
    try:
        csv_rows = read_rows(stream, encoding=encoding, required=required, optional=optional)
        checked.header = csv_rows.header
        if check_header is not None:
            check_header(csv_rows.header)
        for item in csv_rows.rows:
            if isinstance(item, RowError):
                checked.errors.append(item)
                continue
            line, row = item
            try:
                checked.rows.append((line, check_row(line, row)))
            except RowInvalid as exc:
                checked.errors.extend(RowError(line, col, problem) for col, problem in exc.problems)
    except CsvFileError as exc:
        checked.errors.append(exc.row_error())
        checked.readable = False
        return checked
    if not checked.rows and not checked.errors:
        checked.errors.append(RowError(2, "file", "no data rows after the header"))
        checked.readable = False
    return checked
