"""Uploaded files read as rows of text cells, streaming: csv (any delimiter), txt, xlsx, xls and html (a web page's
table named .xls).

Rows are numbered as a spreadsheet numbers them (the header is row 1), so that the error report
points at the row the user sees. Nothing here holds more than one row, except xls: xlrd reads the
whole (at most 65,536-row) workbook. An xlsx's shared texts are read as far as the rows need them, and
kept on disk past the first 50,000 (xlsx_strings).
"""

from __future__ import annotations

import codecs
import csv
import datetime
import html.parser
import io
import itertools
import logging
import re
import zipfile
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import PurePath
from typing import BinaryIO
from xml.etree import ElementTree

import xlrd
from openpyxl.utils.exceptions import InvalidFileException

from contacts.imports.columns import looks_like_data
from contacts.imports.xlsx_strings import SharedStringsProblem, workbook_open

logger = logging.getLogger(__name__)

EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "txt", ".xlsx": "xlsx", ".xls": "xls"}
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document
DELIMITERS = ",;\t|"
BLOCK = 1 << 20
SNIFF_SIZE = 64 * 1024
Row = tuple[int, list[str]]


class FileProblem(Exception):
    """The file as a whole cannot be imported; the message tells the user why."""


def file_format(name: str, head: bytes) -> str:
    """csv, txt, xlsx or xls: from the first bytes where they tell (workbooks), else from the name.

    Some portals export text (tab-separated, or UTF-16) under an .xls name; such a file is read as csv. Others (the
    DLT portals among them) export a web page holding a table, which Excel opens as a sheet: it is read as "html".
    `head` is the file's first bytes, 512 of them to tell a web page.
    """
    suffix = PurePath(name or "").suffix.lower()
    if suffix not in EXTENSIONS:
        raise FileProblem(f"Unsupported file type {suffix or '(none)'!r}: upload a csv, txt, xls or xlsx file.")
    workbook = EXTENSIONS[suffix] in ("xlsx", "xls")
    if _signed(head, XLSX_MAGIC, cut=workbook):
        return "xlsx"
    if _signed(head, XLS_MAGIC, cut=workbook):
        return "xls"
    if EXTENSIONS[suffix] == "xls" and _is_markup(head):
        return "html"
    if EXTENSIONS[suffix] == "xls" and (
        b"\x00" not in head or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    ):
        return "csv"
    if workbook:
        raise FileProblem(f"The file is not a valid {EXTENSIONS[suffix]} workbook.")
    return EXTENSIONS[suffix]


def _signed(head: bytes, magic: bytes, *, cut: bool = False) -> bool:
    """Whether a file starts as a workbook of this signature does: its first 3 bytes, which hold a control character
    no text file has, so that one whose signature is damaged or cut short (a workbook copied as text ends at the 0x1A
    of the OLE2 one) is read as the workbook it is, and refused as damaged. Read as csv, it was refused for its
    header: "No phone column … 'ÐÏ…'". With `cut` (a file named as a workbook), a file of 1 or 2 bytes that begin the
    signature is one too: an .xls cut to its first byte was read as csv ("Columns: 'Ð'")."""
    return head[:3] == magic[:3] or (cut and 0 < len(head) < 3 and magic.startswith(head))


_MARKUP_START = re.compile(r"\s*<[!?a-z]", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def _is_markup(head: bytes) -> bool:
    """Whether a file starts with a tag (after its BOM, if any, and blanks): a web page, or an XML workbook."""
    encoding = next((encoding for bom, encoding in _BOMS if head.startswith(bom)), "latin-1")
    text = head.decode(encoding, "ignore").removeprefix("\ufeff")
    return bool(_MARKUP_START.match(text))


class Sheet:
    """An open file's rows, numbered from 1, as lists of text cells; `lines` estimates how many rows there are."""

    def __init__(self, rows: Iterator[Row], *, lines: int | None, close=None, delimiter: str = ","):
        self.rows = rows
        self.lines = lines
        self._close = close
        self.delimiter = delimiter  # a csv's, for what is written back to its reader (the error report)

    def close(self) -> None:
        if self._close:
            self._close()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_sheet(fh: BinaryIO, fmt: str, *, scan: bool = False) -> Sheet:
    """Read `fh` (binary, seekable) as `fmt` (text files: see detect_encoding). With `scan`, text files are read
    once first to count their lines, for the import's progress and size limit, and so is a workbook's sheet when the
    workbook does not state its size."""
    fh.seek(0)
    if fmt == "xlsx":
        return _xlsx_sheet(fh, scan=scan)
    if fmt == "xls":
        return _xls_sheet(fh)
    if fmt == "html":
        return _html_sheet(fh, scan=scan)
    encoding, errors, lines = detect_encoding(fh, scan=scan)
    fh.seek(0)
    text = io.TextIOWrapper(fh, encoding=encoding, errors=errors, newline="")  # (lines end at \r, \n or both)
    try:
        sample = text.read(SNIFF_SIZE)
    except UnicodeDecodeError as exc:  # UTF-16 (read strictly: it has a BOM) broken in its first block
        raise FileProblem(f"The file could not be read as {encoding}: {exc}.") from None
    text.seek(0)
    delimiter = ","
    if fmt == "txt" and not _delimited(sample):
        rows = ((number, [line.strip()]) for number, line in enumerate(_without_nul(text), start=1))
    else:
        if declared := EXCEL_SEPARATOR_LINE.match(sample):  # Excel's "sep=;" line: it names the delimiter and
            delimiter = declared[1]  # is no row (Excel does not show it, so the header stays row 1)
            text.readline()
            lines -= 1
        else:
            delimiter = sniff_delimiter(sample)
        lines_and_end = itertools.chain(_without_nul(text), [_END_OF_FILE])
        rows = _closed_quotes(enumerate(csv.reader(lines_and_end, delimiter=delimiter), start=1))
        if '="' in sample:  # (files that write cells so write them all: the others pay nothing)
            rows = _excel_text_cells(rows)
    return Sheet(_text_rows(rows), lines=lines if scan else None, close=text.detach, delimiter=delimiter)


_EXCEL_TEXT = re.compile(r'="((?:[^"]|"")*)"', re.DOTALL)


def _excel_text_cells(rows: Iterator[Row]) -> Iterator[Row]:
    """Cells written ="0612345678", as systems export a csv for Excel so that it keeps a number's leading zero or a
    long id's digits (Excel shows the text between the quotes), as that text. (They were read as they are: a
    19-digit DLT template id or an e-mail address so written was refused, a name stored with its ="…".)"""
    for number, cells in rows:
        yield number, [_excel_text(cell) if cell.startswith('="') else cell for cell in cells]


def _excel_text(cell: str) -> str:
    match = _EXCEL_TEXT.fullmatch(cell)
    return match.group(1).replace('""', '"') if match else cell


_END_OF_FILE = "\x00"  # a line the csv reader is given after the file's last: no line read has a NUL (_without_nul)
UNCLOSED_QUOTE = (
    'a quote (") opens a cell that is never closed, so every line after it is read into that one cell: close the'
    " quote, or write the cell without quotes, and import the file again"
)


def _closed_quotes(rows: Iterator[Row]) -> Iterator[Row]:
    """The csv's rows, up to the end mark. A cell that an opening quote left open to the end of the file holds the
    rest of the file and the end mark: the file fails there, saying so. (The csv reader takes such a cell without a
    word: the rows after it were gone, uncounted and unreported, and their text stored in the row's cell.)"""
    for number, cells in rows:
        if cells and cells[-1].endswith(_END_OF_FILE):
            if cells == [_END_OF_FILE]:
                return
            raise FileProblem(f"Row {number}, column {len(cells)}: {UNCLOSED_QUOTE}.")
        yield number, cells


def _delimited(sample: str) -> bool:
    """Whether a txt file has columns, by its first line: Excel's two text exports ("Unicode Text", which is UTF-16,
    and "Text (Tab delimited)") are tab-separated .txt files, read as csv (before, each line was read whole as one
    number, and every row was refused). A line of several numbers or addresses ("9812345678, 9812345679") is no
    header nor a row of a table: such a file is read a line a value as before, and its lines reported, rather than
    an opt-out list's numbers after the first on a line left out without a word."""
    first = next((line for line in sample.splitlines() if line.strip()), "")
    delimiter = next((delimiter for delimiter in DELIMITERS if delimiter in first), None)
    return delimiter is not None and not all(map(looks_like_data, filter(None, map(str.strip, first.split(delimiter)))))


LINE_MAX = 1 << 20  # characters of a line of a text file (a csv's cell takes at most 131,072)


def _without_nul(text: io.TextIOWrapper) -> Iterator[str]:
    """The lines without NUL characters, which mean nothing in a text file and which PostgreSQL cannot store
    (in jsonb, one failed the whole import). One scan a line, in C: 0.04 s a million rows, which import in 15 s.

    A line over LINE_MAX characters fails the file there, before more of it is read: a line was read whole, so a
    file of one 200 MB line (no text at all, or a list written on one line) took 200 to 800 MB of the web server's
    memory as its upload was checked, before being refused."""
    for number, line in enumerate(iter(partial(text.readline, LINE_MAX + 1), ""), start=1):
        if len(line) > LINE_MAX and not line.endswith(("\n", "\r")):
            raise FileProblem(
                f"Line {number:,} of the file is over {LINE_MAX:,} characters: is it a text file with a row a line?"
                " A list of numbers or addresses goes one a line."
            )
        yield line.replace("\x00", "") if "\x00" in line else line


def _text_rows(rows: Iterator[Row]) -> Iterator[Row]:
    number = 0
    try:
        for number, cells in rows:
            yield number, cells
    except (csv.Error, UnicodeDecodeError) as exc:
        if "field larger than field limit" in str(exc):  # the usual cause: a quote never closed (see _closed_quotes)
            raise FileProblem(
                f"Row {number + 1} could not be read: a cell is over {csv.field_size_limit():,} characters. Most"
                f" likely {UNCLOSED_QUOTE}."
            ) from None
        raise FileProblem(f"Row {number + 1} could not be read: {exc}.") from None


def _windows_1252_bytes(error: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: bytes that are not UTF-8 read as Windows-1252 (Latin-1 for the five it leaves
    undefined), one by one, and decoding goes on as UTF-8 after them."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = bytes(error.object[error.start : error.end])
    return "".join(bytes([byte]).decode("cp1252", "ignore") or chr(byte) for byte in bad), error.end


WINDOWS_1252_FALLBACK = "herald-windows-1252-fallback"
codecs.register_error(WINDOWS_1252_FALLBACK, _windows_1252_bytes)
_HIGH_BYTES = re.compile(rb"[\x80-\xff]+")


def looks_windows_1251(sample: bytes) -> bool:
    """Whether a file without a BOM whose first block is `sample` is Windows-1251 (Cyrillic) rather than UTF-8.

    A Russian Excel saves csv in Windows-1251, where every Cyrillic letter is one byte from 0xC0 up, so its words
    are runs of such bytes that are no UTF-8. In Windows-1252 ("Latin-1") text they are lone accented letters among
    ASCII ones ("José", "Müller"; at most two together, as in "ção"). So: most of the bytes that are not UTF-8 are
    in runs of three or more, and there is less UTF-8 text than that (a UTF-8 file with one such row pasted in
    stays UTF-8)."""
    utf8 = not_utf8 = in_words = 0
    for match in _HIGH_BYTES.finditer(sample):
        run = match.group()
        try:
            run.decode("utf-8")
            utf8 += len(run)
        except UnicodeDecodeError:
            not_utf8 += len(run)
            in_words += len(run) if len(run) >= 3 else 0
    return in_words * 2 > not_utf8 > utf8


def detect_encoding(fh: BinaryIO, *, scan: bool) -> tuple[str, str, int]:
    """How to read a text file: UTF-16 with a BOM; Windows-1251 when the first block that is not UTF-8 looks
    Cyrillic (looks_windows_1251); else UTF-8 (BOM or not), where a byte that is not UTF-8 reads as
    Windows-1252, the "Latin-1" of spreadsheet exports (WINDOWS_1252_FALLBACK): a whole Latin-1 file, and a Latin-1
    row pasted into a UTF-8 one, both read right, and the UTF-8 rows around it stay UTF-8. (A run of Latin-1
    letters that happens to be valid UTF-8, "Ã©", is read as UTF-8: no real text has one.) Returns the encoding,
    the decoding error handler and, with `scan`, the number of lines."""
    head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        encoding, errors = "utf-8-sig", WINDOWS_1252_FALLBACK
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, errors = "utf-16", "strict"
    else:
        encoding, errors = "utf-8", WINDOWS_1252_FALLBACK
    # The guess is made on the first block that is not UTF-8 (its Cyrillic may start after many rows of digits);
    # without `scan`, on the first block alone. Checking that a block is UTF-8 is one pass in C.
    utf8 = codecs.getincrementaldecoder("utf-8")() if encoding == "utf-8" else None
    lines = crs = cr_lfs = 0
    last = b""
    fh.seek(0)
    while block := fh.read(BLOCK):
        lines += block.count(b"\n")
        crs, cr_lfs = crs + block.count(b"\r"), cr_lfs + block.count(b"\r\n")
        last = block
        if utf8 is not None:
            try:
                utf8.decode(block)
            except UnicodeDecodeError:
                if looks_windows_1251(block):
                    encoding, errors = "cp1251", "replace"  # 0x98, the one byte it leaves undefined, is no text
                utf8 = None
        if not scan:
            break
    # Lines end with \n, \r\n or \r alone (Excel for Mac's "CSV (Macintosh)"): counting only \n, such a file had
    # one line, so a file over IMPORT_MAX_ROWS was found so only once its first million rows were merged, and the
    # progress bar had no total. (In UTF-16, "\r\x00\n" holds no b"\r\n": the \n are counted then.)
    lines = max(lines, crs - cr_lfs)
    return encoding, errors, lines + (1 if last and not last.endswith((b"\n", b"\r")) else 0)


EXCEL_SEPARATOR_LINE = re.compile(r"\ufeff?sep=([^\r\n])\r?(\n|$)", re.IGNORECASE)


def sniff_delimiter(sample: str) -> str:
    """The delimiter csv.Sniffer finds among , ; tab |, on whole lines of the sample; a comma if none."""
    if "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


# A spreadsheet keeps 15 significant digits of a number: a longer id stored as a number (a 19-digit DLT template
# id) has already lost its last digits, so it is shown as the number it is, never as digits that look exact.
# (A cell written with all its digits, which openpyxl reads as an int, is exact and kept as it is.)
EXACT_DIGITS_BELOW = 10**15


ROUNDED_NUMBER = re.compile(r"[-+]?\d([.,]\d+)?E[+-]?\d+", re.IGNORECASE)  # (a decimal comma in some locales)
ROUNDED_NUMBER_REASON = (
    "a number of more than 15 digits in the spreadsheet, which has lost its last digits: format the column as "
    "text, type the ids again and export"
)
ROUNDED_PHONE_REASON = (
    "a number in scientific notation, as a spreadsheet shows a long number, which has lost its last digits: "
    "format the column as text and export again"
)
_WHOLE_DECIMAL = re.compile(r"(\+?\d+)\.0+")


def reason_unless_rounded(text: str, reason: str, rounded_reason: str = ROUNDED_PHONE_REASON) -> str:
    """Why a cell was refused: `rounded_reason` for a number in scientific notation (its last digits are lost, and
    the user needs to know to export the column as text), else `reason`."""
    return rounded_reason if ROUNDED_NUMBER.fullmatch(text) else reason


def whole_number(text: str) -> str:
    """A whole number written as a decimal ("9812345678.0", as a spreadsheet program or a script exports a number
    column) as its digits; any other text as it is. (A phone parser would read the dot as a separator and the
    number as one digit longer.)"""
    if "." not in text:  # (a million rows a file: the common case skips the pattern)
        return text
    match = _WHOLE_DECIMAL.fullmatch(text)
    return match.group(1) if match else text


def cell_text(value) -> str:
    """A workbook cell as the text a user sees: 9812345678.0 as "9812345678", a date as 2024-05-31; a whole number
    of more than 15 digits as Excel shows it (1.10716123456789E+18), so that a check of the value rejects it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value  # (see _without_nul)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < EXACT_DIGITS_BELOW:
            return str(int(value))
        return f"{value:.15G}" if value.is_integer() else repr(value)
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


# A workbook is a zip of XML parts, and openpyxl holds some of a part in memory whole (its shared strings, a cell's
# text): a part that expands far beyond its compressed size (a "zip bomb": 300 KB of upload, one 300 MB cell) took
# a web server's or worker's memory (1.1 GB there) as the upload was read. Such parts are refused before anything is
# read, by the sizes the zip declares (zipfile never inflates a part past the size it declares). The limit is
# Apache POI's (ZipSecureFile): what spreadsheet programs write compresses 5 to 20 times.
INFLATE_RATIO_MAX = 100
INFLATE_CHECKED_FROM = 16 << 20  # bytes a part may expand to whatever its ratio (a small part is no danger)


def _check_inflation(fh: BinaryIO) -> None:
    with zipfile.ZipFile(fh) as archive:
        for part in archive.infolist():
            if part.file_size > max(INFLATE_CHECKED_FROM, INFLATE_RATIO_MAX * part.compress_size):
                raise FileProblem(
                    f"The workbook could not be read: its part {part.filename} expands from {part.compress_size:,}"
                    f" to {part.file_size:,} bytes, more than {INFLATE_RATIO_MAX} times, which no spreadsheet program"
                    " writes. Open it in Excel and save it again, or save it as csv."
                )


# A row element of a sheet's XML, with or without a namespace prefix (<row r="2">, <x:row>), and not <rowBreaks>.
ROW_ELEMENT = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,30}:)?row\b")
ROW_ELEMENT_LONGEST = 40  # bytes a match and the character after it can take
ROW_COUNT_BLOCK = 1 << 20  # inflated bytes read at a time


def _rows_written(sheet) -> int:
    """How many rows a sheet's XML holds, its row elements counted as the part inflates, a megabyte at a time: for a
    workbook that states no size (no <dimension>; some exporters write none), so that the import's progress bar has
    a total and a file over the limit is refused before anything is merged."""
    count, carry = 0, b""
    with sheet._get_source() as part:  # openpyxl's own way to the sheet's part in the zip
        while block := part.read(ROW_COUNT_BLOCK):
            data = carry + block
            keep = len(data) - ROW_ELEMENT_LONGEST  # a match starting here may be cut: counted with the next block
            count += sum(1 for match in ROW_ELEMENT.finditer(data) if match.start() < keep)
            carry = data[max(keep, 0) :]
    return count + sum(1 for _ in ROW_ELEMENT.finditer(carry))


def _xlsx_sheet(fh: BinaryIO, *, scan: bool = False) -> Sheet:
    try:
        _check_inflation(fh)
        fh.seek(0)
        book, close = workbook_open(fh)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise FileProblem(f"The file could not be read as an Excel workbook (xlsx): {exc}.") from None
    sheet = book.active or book.worksheets[0]
    # The size stored in the sheet (its <dimension>) only estimates the rows for the progress bar: some programs
    # write it wrong, and openpyxl would read no further than it says (rows and columns silently left out).
    lines = sheet.max_row
    if lines is None and scan:
        try:
            lines = _rows_written(sheet)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a part cut short or damaged: CRC, inflation
            close()
            raise FileProblem(f"The workbook could not be read: its sheet is damaged ({exc}).") from None
    sheet.reset_dimensions()

    def rows() -> Iterator[Row]:
        # From row 1, as iter_rows reads (rows missing from the file come back empty). The sheet and its shared
        # texts are parsed as the rows are read, so a part broken further down is found only there.
        try:
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [cell_text(value) for value in values]
        except SharedStringsProblem as exc:
            raise FileProblem(f"The workbook could not be read: {exc}.") from None
        except ElementTree.ParseError as exc:
            raise FileProblem(f"The workbook could not be read: its sheet is not well-formed XML ({exc}).") from None

    return Sheet(rows(), lines=lines, close=close)


def _xls_shown_sheet(book: xlrd.Book) -> xlrd.sheet.Sheet:
    """The sheet Excel showed when the workbook was saved, as an xlsx's active sheet is read: the one marked shown,
    else the first one selected, else the first. Sheets are loaded one at a time to look, and let go."""
    selected = None
    for index in range(book.nsheets):
        sheet = book.sheet_by_index(index)
        if sheet.sheet_visible:
            return sheet
        if selected is None and sheet.sheet_selected:
            selected = index
        book.unload_sheet(index)
    return book.sheet_by_index(selected or 0)


class _XlrdLog:
    """Where xlrd writes what it notices in a workbook ("WARNING *** file size (2000) not 512 + multiple of sector
    size"): the log, not the worker's or the web server's standard output, which it went to. Its warnings are kept:
    on a damaged file one may say what is wrong better than the error that follows ("File is truncated, or OLE2 MSAT
    is corrupt", then an IndexError's "array index out of range")."""

    WARNING = re.compile(r"WARNING \*+ (.*?)[!.\s]*$")

    def __init__(self):
        self.warnings: deque[str] = deque(maxlen=16)  # the last few: a damaged file may warn of every record

    def write(self, text: str) -> None:
        if text.strip():
            logger.info("xlrd: %s", text.strip())
            if match := self.WARNING.match(text.strip()):
                self.warnings.append(match[1])


def _xls_sheet(fh: BinaryIO) -> Sheet:
    log = _XlrdLog()
    try:
        book = xlrd.open_workbook(file_contents=fh.read(), on_demand=True, logfile=log)
        sheet = _xls_shown_sheet(book)
    except Exception as exc:  # xlrd raises a handful of unrelated types on a damaged file
        raise FileProblem(_xls_problem(exc, log.warnings)) from None

    def text(cell) -> str:
        if cell.ctype == xlrd.XL_CELL_DATE:
            try:
                return cell_text(xlrd.xldate_as_datetime(cell.value, book.datemode))
            except (ValueError, OverflowError, xlrd.xldate.XLDateError):
                return cell_text(cell.value)
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return cell_text(bool(cell.value))
        if cell.ctype == xlrd.XL_CELL_ERROR:
            return ""
        return cell_text(cell.value)

    def rows() -> Iterator[Row]:
        for index in range(sheet.nrows):
            yield index + 1, [text(cell) for cell in sheet.row(index)]

    return Sheet(rows(), lines=sheet.nrows, close=book.release_resources)


# What xlrd says that a person can read, as it begins its refusal or warning: kept, and what follows it left out. The
# rest (sector sizes, record names, the bytes it found as Python writes them: "Expected BOF record; found b'\xd0…'")
# speaks to whoever debugs xlrd; the log has it (_XlrdLog).
XLRD_READABLE = re.compile(
    r"Workbook is encrypted|File is truncated, or OLE2 MSAT is corrupt|File size is 0 bytes"
    r"|Can't find workbook in OLE2 compound document|Unsupported format, or corrupt file|[\w .]+; not supported"
)


def _xlrd_readable(text: str) -> str:
    """xlrd's words, as far as a person can read them ("Unsupported format, or corrupt file" of "Unsupported format,
    or corrupt file: Expected BOF record; found b'…'"), or ""."""
    match = XLRD_READABLE.match(text)
    return match[0] if match else ""


def _xls_problem(exc: Exception, warnings: Iterable[str]) -> str:
    """Why an .xls cannot be read, for the person who chose it: its refusal in xlrd's words where they are readable
    ("Workbook is encrypted"), else that it is damaged, with the last readable thing xlrd warned of or said of the
    damage ("File is truncated, or OLE2 MSAT is corrupt"); never the words of the Python error it stumbled on ("array
    index out of range", "unpack requires a buffer of 16 bytes"), nor the bytes it found."""
    if isinstance(exc, xlrd.XLRDError) and (refusal := _xlrd_readable(str(exc))):
        why = refusal
    else:
        said = [*warnings, str(exc) if isinstance(exc, xlrd.compdoc.CompDocError) else ""]
        detail = next((readable for text in reversed(said) if (readable := _xlrd_readable(text))), "")
        why = "it is damaged or incomplete" + (f" ({detail})" if detail else "")
    return f"This .xls workbook could not be read: {why}. Open it in Excel and save it again, or save it as csv."


class _TableRows(html.parser.HTMLParser):
    """The rows of a web page's tables as Excel opens them, a <tr> a row and a <td> or <th> a cell, its text with
    blanks collapsed as a browser does (a <br> a line break in the cell; &amp; and &nbsp; read). Also Excel 2003's XML workbook (SpreadsheetML, some
    systems save it under an .xls name): its first <Worksheet>'s <Row>s of <Cell>s. Finished rows wait in `rows`."""

    ROW, CELL, TABLE = {"tr", "row"}, {"td", "th", "cell"}, {"table", "thead", "tbody", "tfoot"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._done = False  # past the first worksheet of a SpreadsheetML workbook

    def handle_starttag(self, tag, attrs):
        if self._done:
            return
        if tag in self.ROW:
            self._end_row()
            self._row = []
        elif tag in self.CELL:
            self._end_cell()
            if self._row is None:  # a cell outside any <tr>: HTML lets </tr> and <tr> be left out
                self._row = []
            index = dict(attrs).get("ss:index") or ""  # SpreadsheetML: a cell after empty ones says its column
            if index.isdigit():
                self._row.extend([""] * (int(index) - 1 - len(self._row)))
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(_LINE_BREAK)

    def handle_endtag(self, tag):
        if tag in self.CELL:
            self._end_cell()
        elif tag in self.ROW or tag in self.TABLE:
            self._end_row()
        elif tag == "worksheet":
            self._end_row()
            self._done = True

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data.replace(_LINE_BREAK, ""))  # (see _without_nul)

    def close(self):
        super().close()
        self._end_row()

    def _end_cell(self):
        if self._cell is not None and self._row is not None:
            lines = "".join(self._cell).split(_LINE_BREAK)
            self._row.append("\n".join(" ".join(line.split()) for line in lines))
        self._cell = None

    def _end_row(self):
        self._end_cell()
        if self._row is not None:
            self.rows.append(self._row)
        self._row = None


_LINE_BREAK = "\x00"  # a <br> in a cell's text while it is read (a NUL of the page itself is dropped)
_ROW_TAG = re.compile(rb"<(?:tr|row)[\s>]", re.IGNORECASE)


def _html_sheet(fh: BinaryIO, *, scan: bool) -> Sheet:
    """A web page's table (see _TableRows), read a block at a time; with `scan`, its rows are counted first."""
    encoding, errors, _ = detect_encoding(fh, scan=False)
    lines = None
    if scan:
        fh.seek(0)
        wide = encoding == "utf-16"  # (its tags' letters have NULs between them)
        blocks = iter(partial(fh.read, BLOCK), b"")
        lines = sum(len(_ROW_TAG.findall(block.replace(b"\x00", b"") if wide else block)) for block in blocks)
    fh.seek(0)
    text = io.TextIOWrapper(fh, encoding=encoding, errors=errors)

    def rows() -> Iterator[Row]:
        parser, number = _TableRows(), 0
        while True:
            block = text.read(BLOCK)
            if block:
                parser.feed(block)
            else:
                parser.close()
            for cells in parser.rows:
                number += 1
                yield number, cells
            parser.rows.clear()
            if not block:
                return

    return Sheet(_text_rows(rows()), lines=lines, close=text.detach)
