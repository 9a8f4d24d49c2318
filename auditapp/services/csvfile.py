"""Reading CSV uploads and files: UTF-8 (with or without BOM) or CP932, streamed by line."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

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
    """The file as a whole cannot be read (encoding, empty, header)."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class CsvRows:
    """The rows of a CSV file with its header, as an iterator of (line, row)."""

    header: list[str]
    rows: Iterator[tuple[int, dict[str, str]]]
    errors: list[RowError] = field(default_factory=list)


def read_rows(
    stream: BinaryIO, *, encoding: str, required: set[str], optional: set[str] = frozenset()
) -> CsvRows:
    """Open a CSV byte stream: check the header, then yield rows lazily with line numbers.

    Raises CsvFileError for an unknown encoding, undecodable bytes (with a hint to use
    cp932 for Japanese Excel files), an empty file, or a header missing columns.
    """
    if encoding not in ENCODINGS:
        raise CsvFileError(f"unknown encoding {encoding!r} (use utf-8 or cp932)")
    hint = (
        "the file is not valid UTF-8; if it was saved by Japanese Excel, use --encoding cp932"
        if encoding == "utf-8"
        else "the file is not valid CP932; if it is UTF-8, use --encoding utf-8"
    )

    def decoded_lines() -> Iterator[str]:
        # Decode line by line (b"\n" never occurs inside a UTF-8 or CP932 character), so a
        # bad byte is reported on its own line and the file is streamed, never held whole.
        for number, raw in enumerate(stream, start=1):
            codec = ENCODINGS[encoding] if number == 1 else encoding
            try:
                yield raw.decode(codec)
            except UnicodeDecodeError as exc:
                raise CsvFileError(hint, number) from exc

    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(decoded_lines())

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
    unknown = sorted(set(header) - required - set(optional))
    if unknown:
        raise CsvFileError(f"unknown column(s): {', '.join(unknown)}")
    if len(set(header)) != len(header):
        raise CsvFileError("a column name appears twice in the header")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
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
                yield line, {"__width__": f"expected {len(header)} columns, found {len(raw)}"}
                continue
            yield line, dict(zip(header, raw, strict=True))

    return CsvRows(header, rows())
