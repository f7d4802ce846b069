"""Reading an Excel workbook for an import, measured in a process of its own (bench_import's xlsx rows).

    .venv/bin/python -m bench.xlsx_read WORKBOOK {columns,rows} {herald,openpyxl}

`columns` is what the upload page does with a file (contact_import_columns: its header and first rows); `rows`
reads every row as the import does (readers.open_sheet with `scan`: a workbook that states no size, as this one,
has its rows counted first). With `openpyxl`, the same through openpyxl's own
read-only reader (load_workbook(read_only=True), every shared text read first), for comparison. Prints JSON:
seconds, rows read, and the peak resident memory over what the process held before reading (MB, sampled
every 10 ms).

`excel_workbook` writes the workbook from bench_import's csv as Excel would: every cell a shared text.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPES = (
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)


def _column(index: int) -> str:
    return chr(ord("A") + index)


def excel_workbook(csv_path: str, xlsx_path: str) -> int:
    """Write the csv's rows as an xlsx whose cells are all shared texts, one text a cell (Excel writes a repeated
    text once; the distinct numbers and addresses of a contact list are most of its cells anyway). Streamed: the
    texts go to a temporary file while the sheet is written. Returns the rows written."""
    rows = 0
    with (
        open(csv_path, newline="", encoding="utf-8") as source,
        tempfile.TemporaryFile() as texts,
        zipfile.ZipFile(xlsx_path, "w", zipfile.ZIP_DEFLATED) as book,
    ):
        reader = csv.reader(source)
        columns = 0
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{MAIN}">'.encode())
            sheet.write(b"<sheetData>")
            count = 0
            for rows, cells in enumerate(reader, start=1):
                columns = max(columns, len(cells))
                xml = [f'<row r="{rows}">']
                for index, cell in enumerate(cells):
                    xml.append(f'<c r="{_column(index)}{rows}" t="s"><v>{count}</v></c>')
                    texts.write(f"<si><t>{escape(cell)}</t></si>".encode())
                    count += 1
                xml.append("</row>")
                sheet.write("".join(xml).encode())
            sheet.write(b"</sheetData></worksheet>")
        texts.seek(0)
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
            strings.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="{MAIN}">'.encode())
            while block := texts.read(1 << 20):
                strings.write(block)
            strings.write(b"</sst>")
        package_parts(book)
    return rows


def package_parts(book: zipfile.ZipFile) -> None:
    """Write the parts that make a zip a one-sheet workbook around `xl/worksheets/sheet1.xml` and
    `xl/sharedStrings.xml` (written by the caller): content types, relationships and the workbook naming the sheet."""
    book.writestr("[Content_Types].xml", CONTENT_TYPES)
    book.writestr(
        "_rels/.rels",
        f'<Relationships xmlns="{PACKAGE_RELS}"><Relationship Id="rId1" Type="{RELS}/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>',
    )
    book.writestr(
        "xl/workbook.xml",
        f'<workbook xmlns="{MAIN}" xmlns:r="{RELS}"><sheets><sheet name="Contacts" sheetId="1" r:id="rId1"/>'
        "</sheets></workbook>",
    )
    book.writestr(
        "xl/_rels/workbook.xml.rels",
        f'<Relationships xmlns="{PACKAGE_RELS}">'
        f'<Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{RELS}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    )


def measure(path: str, what: str, reader: str) -> dict:
    """In a fresh process (its peak memory is its own): `what` of the workbook at `path` through `reader`."""
    command = [sys.executable, "-m", "bench.xlsx_read", path, what, reader]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    answer = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def _read(path: str, what: str, reader: str) -> int:
    if reader == "openpyxl":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        rows = book.active.iter_rows(values_only=True)
        count = 1 if what == "columns" and next(rows, None) is not None else sum(1 for _ in rows)
        book.close()
        return count
    if what == "columns":
        from django.core.files import File

        from contacts.imports.services import contact_import_columns

        with open(path, "rb") as fh:
            return len(contact_import_columns(file=File(fh, name="contacts.xlsx"))["columns"])
    from contacts.imports.readers import open_sheet

    with open(path, "rb") as fh, open_sheet(fh, "xlsx", scan=True) as sheet:  # as the import opens it
        return sum(1 for _ in sheet.rows)


def main(path: str, what: str, reader: str) -> None:
    import django

    django.setup()
    # Imported before the baseline, as the web server and the worker have them.
    import openpyxl  # noqa: F401
    import psutil

    import contacts.imports.services  # noqa: F401

    process, peak, done = psutil.Process(), [0], threading.Event()
    before = process.memory_info().rss

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss - before)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    count = _read(path, what, reader)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    print(json.dumps({"seconds": round(seconds, 2), "count": count, "peak_mb": round(peak[0] / 1024 / 1024, 1)}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
