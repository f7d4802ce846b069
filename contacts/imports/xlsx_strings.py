"""An xlsx's shared-string table, read only as far as its cells ask and kept on disk past its first entries.

Excel writes each distinct text of a workbook once, in `xl/sharedStrings.xml`, and a cell holds its number there.
openpyxl (even read-only) reads that table whole, into a list, before the first row: for an Excel file of 1,000,000
contacts with their e-mail addresses, a million strings, ~30 s and ~170 MB before the upload page could show the
file's columns (past the web server's 30 s timeout), and as much again in the worker for the whole import.

`SharedStrings` parses the table (expat, fed a block at a time) only as far as the highest number a cell has asked
for, which for the header is a handful of entries and for the rows grows as they are read (a spreadsheet program
numbers texts in the order it meets them). The first KEEP_IN_MEMORY texts stay in a list (the repeated values of a
sheet, its cities or first names, are met early); the rest go to temporary files and are read back from there.

`workbook_open` plugs it into openpyxl in place of its list, lets go of each row once read (openpyxl keeps an empty
element a row) and reads a sheet's size from its head only (openpyxl reads the whole sheet when it states none): a
million rows are read in constant memory.
"""

from __future__ import annotations

import array
import os
import struct
import tempfile
import xml.parsers.expat
from typing import IO
from xml.etree import ElementTree

from openpyxl.cell.read_only import EMPTY_CELL
from openpyxl.reader.excel import ExcelReader
from openpyxl.utils.cell import range_boundaries
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._reader import DATA_TAG, ROW_TAG, WorkSheetParser
from openpyxl.xml.constants import SHARED_STRINGS

KEEP_IN_MEMORY = 50_000  # texts kept as str; past them, texts are read back from temporary files
FEED_SIZE = 64 * 1024  # bytes of the XML part parsed at a time
SPILL_FLUSH_SIZE = 1 << 20  # texts written to the temporary files this many bytes at a time


class SharedStringsProblem(ValueError):
    """The table cannot be read, or a cell refers to a text it does not have; the message says which."""


class SharedStrings:
    """The texts of a shared-string table by number, as openpyxl's reader looks them up (`table[int(value)]`).

    A text is what openpyxl reads for it: the `<t>` of its `<si>` and of its rich-text runs, not of its phonetic
    runs (`<rPh>`), with openpyxl's `x005F_` removed."""

    def __init__(self, source: IO[bytes]):
        self._source = source
        self._parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        self._parser.buffer_text = True
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._parser.StartDoctypeDeclHandler = self._doctype
        self._ended = False
        self._problem = ""  # why the table could not be read further
        self._parts: list[str] | None = None  # the current <si>'s text so far
        self._in_t = False
        self._phonetic = 0  # depth inside <rPh>
        self._kept: list[str] = []
        self._spilled: _Spill | None = None  # the texts past the kept ones
        self._count = 0

    def __getitem__(self, number: int) -> str:
        if number < 0:
            raise SharedStringsProblem(f"a cell refers to shared text number {number}")
        while number >= self._count and not self._ended:
            self._feed()
        if number >= self._count:
            raise SharedStringsProblem(
                f"a cell refers to shared text number {number:,}, and the workbook has {self._count:,}"
            )
        if number < len(self._kept):
            return self._kept[number]
        return self._spilled[number - len(self._kept)]

    def __len__(self) -> int:
        """The texts read so far (the table is read only as far as cells ask)."""
        return self._count

    def close(self) -> None:
        if self._spilled is not None:
            self._spilled.close()
            self._spilled = None
        self._source.close()

    def _feed(self) -> None:
        if self._problem:  # (the parser stops at its first error)
            raise SharedStringsProblem(self._problem)
        block = self._source.read(FEED_SIZE)
        try:
            self._parser.Parse(block, not block)
        except xml.parsers.expat.ExpatError as exc:
            self._problem = f"its shared texts (xl/sharedStrings.xml) are not well-formed XML: {exc}"
        except SharedStringsProblem as exc:  # raised by a handler
            self._problem = str(exc)
        if self._problem:
            raise SharedStringsProblem(self._problem)
        if not block:
            self._ended = True

    def _add(self, text: str) -> None:
        if self._count < KEEP_IN_MEMORY:
            self._kept.append(text)
        else:
            if self._spilled is None:
                self._spilled = _Spill()
            self._spilled.append(text)
        self._count += 1

    # expat's handlers. Names come as "namespace local"; only the local part matters (some programs write a prefix).

    def _start(self, name: str, attributes) -> None:
        local = name.rpartition(" ")[2]
        if local == "si":
            self._parts, self._phonetic = [], 0
        elif self._parts is None:
            return
        elif local == "rPh":
            self._phonetic += 1
        elif local == "t" and not self._phonetic:
            self._in_t = True

    def _end(self, name: str) -> None:
        if self._parts is None:
            return
        local = name.rpartition(" ")[2]
        if local == "si":
            self._add("".join(self._parts).replace("x005F_", ""))
            self._parts = None
        elif local == "rPh":
            self._phonetic -= 1
        elif local == "t":
            self._in_t = False

    def _text(self, data: str) -> None:
        if self._in_t:
            self._parts.append(data)

    def _doctype(self, *args) -> None:
        # No spreadsheet program writes one; a document type could declare entities that expand to gigabytes.
        raise SharedStringsProblem("its shared texts (xl/sharedStrings.xml) declare a document type")


class _Spill:
    """Texts appended to temporary files and read back by their number: their UTF-8 bytes in one file, where each
    ends (8 bytes) in another, both written SPILL_FLUSH_SIZE bytes of texts at a time; nothing more held in memory."""

    def __init__(self):
        self._texts = tempfile.TemporaryFile(prefix="herald-xlsx-texts-")  # noqa: SIM115 (closed in close())
        self._ends = tempfile.TemporaryFile(prefix="herald-xlsx-ends-")  # noqa: SIM115
        self._pending = bytearray()  # texts not written yet
        self._pending_ends = array.array("Q")  # where each of them ends
        self._written = 0  # bytes of texts in the file
        self._written_count = 0  # texts in the file

    def append(self, text: str) -> None:
        self._pending += text.encode()
        self._pending_ends.append(self._written + len(self._pending))
        if len(self._pending) >= SPILL_FLUSH_SIZE:
            self._texts.write(self._pending)
            self._texts.flush()
            self._ends.write(self._pending_ends.tobytes())
            self._ends.flush()
            self._written += len(self._pending)
            self._written_count += len(self._pending_ends)
            self._pending.clear()
            self._pending_ends = array.array("Q")

    def __getitem__(self, index: int) -> str:
        if 0 < index < self._written_count:  # both ends in the file: one read
            start, end = struct.unpack("=2Q", os.pread(self._ends.fileno(), 16, 8 * (index - 1)))
        else:
            start, end = (self._end(index - 1) if index else 0), self._end(index)
        if start >= self._written:  # (a text is written whole or not at all)
            return self._pending[start - self._written : end - self._written].decode()
        return os.pread(self._texts.fileno(), end - start, start).decode()

    def _end(self, index: int) -> int:
        if index < self._written_count:
            return struct.unpack("=Q", os.pread(self._ends.fileno(), 8, 8 * index))[0]
        return self._pending_ends[index - self._written_count]

    def close(self) -> None:
        self._texts.close()
        self._ends.close()


class _RowParser(WorkSheetParser):
    """openpyxl's sheet parser for a read-only sheet's rows, each <row> let go of once read. openpyxl's own clears a
    row's cells but leaves the emptied <row> under <sheetData>: ~86 bytes a row, 86 MB for a million."""

    def parse(self):
        data = None
        for event, element in ElementTree.iterparse(self.source, events=("start", "end")):
            if event == "start":
                if element.tag == DATA_TAG:
                    data = element
            elif element.tag == ROW_TAG:
                row = self.parse_row(element)
                if data is not None:
                    data.clear()  # (the row is its only child)
                yield row


class _Sheet(ReadOnlyWorksheet):
    """openpyxl's read-only sheet, its rows read by _RowParser and its size from the sheet's head only. openpyxl looks
    for the <dimension> up to the end of <sheetData>, i.e. through the whole sheet when a program wrote none (15 s
    and ~90 MB for a million rows), only for an estimate (readers._xlsx_sheet reads every row whatever it says)."""

    def _cells_by_row(self, min_col, min_row, max_col, max_row, values_only=False):
        # ReadOnlyWorksheet's, with _RowParser for openpyxl's WorkSheetParser.
        filler = None if values_only else EMPTY_CELL
        max_col = max_col or self.max_column
        max_row = max_row or self.max_row
        empty_row = []
        if max_col is not None:
            empty_row = (filler,) * (max_col + 1 - min_col)
        counter = min_row
        idx = 1
        with self._get_source() as src:
            parser = _RowParser(
                src,
                self._shared_strings,
                data_only=self.parent.data_only,
                epoch=self.parent.epoch,
                date_formats=self.parent._date_formats,
                timedelta_formats=self.parent._timedelta_formats,
            )
            for idx, row in parser.parse():
                if max_row is not None and idx > max_row:
                    break
                for _ in range(counter, idx):  # rows missing from the file
                    counter += 1
                    yield empty_row
                if counter <= idx:
                    counter += 1
                    yield self._get_row(row, min_col, max_col, values_only)
        if max_row is not None and max_row < idx:
            for _ in range(counter, max_row + 1):
                yield empty_row

    def _get_size(self):
        with self._get_source() as source:
            for _event, element in ElementTree.iterparse(source, events=("start",)):
                local = element.tag.rpartition("}")[2]
                if local == "sheetData":
                    return
                if local == "dimension":
                    try:
                        boundaries = range_boundaries(element.get("ref") or "")
                    except (TypeError, ValueError):  # a size written wrong: no estimate
                        return
                    self._min_column, self._min_row, self._max_column, self._max_row = boundaries
                    return


class _Reader(ExcelReader):
    """openpyxl's reader, read-only, with the shared strings read lazily (above) instead of whole into a list, and
    its sheets sized from their heads."""

    def read_strings(self):
        part = self.package.find(SHARED_STRINGS)
        if part is not None:
            self.shared_strings = SharedStrings(self.archive.open(part.PartName[1:]))

    def read_worksheets(self):
        for sheet, rel in self.parser.find_sheets():  # (as ExcelReader's, for a read-only workbook)
            if rel.target not in self.valid_files:
                continue
            if "chartsheet" in rel.Type:
                self.read_chartsheet(sheet, rel)
                continue
            worksheet = _Sheet(self.wb, sheet.name, rel.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)


def workbook_open(fh: IO[bytes]):
    """`openpyxl.load_workbook(fh, read_only=True, data_only=True)` with lazy shared strings; returns (workbook, a
    function that closes both)."""
    reader = _Reader(fh, read_only=True, data_only=True)
    reader.read()
    strings = reader.shared_strings

    def close() -> None:
        if isinstance(strings, SharedStrings):
            strings.close()
        reader.wb.close()

    return reader.wb, close
