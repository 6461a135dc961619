"""Exports accountants open in a spreadsheet: CSV written for the reader's Excel, and XLSX.

CSV: a UTF-8 byte order mark (so that Excel reads accents right), and in French a semicolon between cells and
a decimal comma, as French Excel expects; headers in the reader's language; dates and times in the school's
time zone, said in the header; amounts in major units with the currency's decimals, never a float. Text that a
spreadsheet would run as a formula is neutralised. Chunks are yielded as rows are read: the first bytes go out
before the last row is read.

XLSX, through XlsxWriter (typed cells: numbers are numbers, dates are dates, whatever the reader's Excel
settings; no separator or encoding to guess): written row by row in its constant-memory mode to a temporary
file, then sent.
"""
from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Iterator

import xlsxwriter
from babel.dates import get_timezone

from ..billing.listing import safe_cell
from ..core.i18n import current_locale
from ..money import Money, exponent

#: Rows written per chunk of a CSV.
BATCH = 500


@dataclass(frozen=True)
class Amount:
    """An amount cell: minor units and their currency."""

    minor: int
    currency: str

    @property
    def major(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))


@dataclass(frozen=True)
class Rate:
    """A VAT rate cell, in basis points (2000 is 20 %)."""

    basis_points: int


@dataclass(frozen=True)
class Column:
    header: str  # in the reader's language already
    width: int = 14


def _local(moment: datetime, zone: str) -> datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(get_timezone(zone))


class _CsvCells:
    """How one reader's spreadsheet reads cells."""

    def __init__(self, locale: str, zone: str):
        self.comma = locale.startswith("fr")
        self.delimiter = ";" if self.comma else ","
        self.zone = zone

    def cell(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, Amount):
            return self._number(value.major)
        if isinstance(value, Rate):
            return self._number(Decimal(value.basis_points) / 100)
        if isinstance(value, datetime):
            return _local(value, self.zone).strftime("%Y-%m-%d %H:%M")
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return self._number(value)
        return neutralised(str(value))

    def _number(self, value) -> str:
        text = format(value, "f")
        return text.replace(".", ",") if self.comma else text


def csv_chunks(columns: list[Column], rows: Iterable[tuple], *, zone: str) -> Iterator[str]:
    """The CSV of ``rows`` for the reader's spreadsheet, in chunks, the byte order mark first."""
    cells = _CsvCells(current_locale(), zone)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=cells.delimiter, lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow([neutralised(column.header) for column in columns])
    yield _drain(out)  # the header at once, before the first row is read
    for count, row in enumerate(rows, start=1):
        writer.writerow([cells.cell(value) for value in row])
        if count % BATCH == 0:
            yield _drain(out)
    yield _drain(out)


def xlsx_file(columns: list[Column], rows: Iterable[tuple], *, zone: str, sheet: str) -> tempfile.SpooledTemporaryFile:
    """An XLSX workbook of ``rows`` (typed cells), rewound, in a temporary file the caller streams and closes."""
    target = tempfile.SpooledTemporaryFile(max_size=4 * 2**20)
    book = xlsxwriter.Workbook(target, {"constant_memory": True, "in_memory": False,
                                        "tmpdir": tempfile.gettempdir(), "strings_to_formulas": False,
                                        "strings_to_urls": False})
    page = book.add_worksheet(sheet[:31])
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    percent = book.add_format({"num_format": "0.00%"})
    amounts: dict[int, Any] = {}

    def money_format(decimals: int):
        if decimals not in amounts:
            amounts[decimals] = book.add_format({"num_format": "#,##0" + ("." + "0" * decimals if decimals else "")})
        return amounts[decimals]

    for index, column in enumerate(columns):
        page.set_column(index, index, column.width)
        page.write_string(0, index, column.header, bold)
    for number, row in enumerate(rows, start=1):
        for index, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, Amount):
                page.write_number(number, index, float(value.major), money_format(exponent(value.currency)))
            elif isinstance(value, Rate):
                page.write_number(number, index, value.basis_points / 10000, percent)
            elif isinstance(value, datetime):
                page.write_datetime(number, index, _local(value, zone).replace(tzinfo=None), when)
            elif isinstance(value, date):
                page.write_datetime(number, index, datetime.combine(value, datetime.min.time()), day)
            elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
                page.write_number(number, index, float(value))
            else:
                page.write_string(number, index, str(value))
    page.freeze_panes(1, 0)
    book.close()
    target.seek(0)
    return target


def file_chunks(source, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in chunks, closing it at the end."""
    try:
        while chunk := source.read(size):
            yield chunk
    finally:
        source.close()


def _drain(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


def neutralised(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (see `listing.safe_cell`)."""
    return safe_cell(text)
