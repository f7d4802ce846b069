"""Workbooks as Excel writes them (every text once, in xl/sharedStrings.xml, cells holding its number), read by
the imports: the texts read as openpyxl reads them, those past the first 50,000 read back from disk, and neither
the texts nor the rows of a large sheet held in memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from xml.sax.saxutils import escape

import openpyxl
import pytest

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.xlsx_read import MAIN, package_parts
from contacts.imports import contact_import_create, contact_import_run, readers, xlsx_strings
from contacts.imports.readers import open_sheet
from contacts.imports.services import contact_import_columns
from contacts.models import Contact, ContactImport

Status = ContactImport.Status
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def column(index: int) -> str:
    return "ABCDEFGHIJ"[index]


def excel_workbook(rows, *, items: list[str] | None = None, dimension: bool = True, strings_head: str = "") -> bytes:
    """An xlsx as Excel writes it. `rows`: lists of cells, an int written as a number, a str as a shared text (or
    ("s", n) for the table's text number n as is). `items`: the table's <si> elements as written (XML), instead of
    one a distinct str of `rows`. Written part by part, so that a large sheet costs no memory here either."""
    numbers: dict[str, int] = {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        with book.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{MAIN}">'.encode())
            if dimension:
                sheet.write(f'<dimension ref="A1:{column(max(len(r) for r in rows) - 1)}{len(rows)}"/>'.encode())
            sheet.write(b"<sheetData>")
            for r, cells in enumerate(rows, start=1):
                xml = [f'<row r="{r}">']
                for c, value in enumerate(cells):
                    ref = f"{column(c)}{r}"
                    if isinstance(value, int):
                        xml.append(f'<c r="{ref}"><v>{value}</v></c>')
                    else:
                        number = value[1] if isinstance(value, tuple) else numbers.setdefault(value, len(numbers))
                        xml.append(f'<c r="{ref}" t="s"><v>{number}</v></c>')
                xml.append("</row>")
                sheet.write("".join(xml).encode())
            sheet.write(b"</sheetData></worksheet>")
        with book.open("xl/sharedStrings.xml", "w") as strings:
            strings.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{strings_head}'.encode())
            strings.write(f'<sst xmlns="{MAIN}">'.encode())
            for item in items if items is not None else (f"<si><t>{escape(text)}</t></si>" for text in numbers):
                strings.write(item.encode())
            strings.write(b"</sst>")
        package_parts(book)
    return out.getvalue()


def read(content: bytes) -> list[list[str]]:
    with open_sheet(io.BytesIO(content), "xlsx") as sheet:
        return [cells for _, cells in sheet.rows]


def upload(content: bytes, name: str = "contacts.xlsx") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


# --- what a text reads as -----------------------------------------------------------------------

ITEMS = {
    "plain": "<si><t>Asha</t></si>",
    "spaces kept": '<si><t xml:space="preserve">  Ravi Kumar </t></si>',
    "rich text runs": "<si><r><rPr><b/></rPr><t>Mee</t></r><r><t>ra</t></r></si>",
    "plain then a run": "<si><t>Pu</t><r><t>ne</t></r></si>",
    "phonetic runs left out": '<si><t>東京</t><rPh sb="0" eb="2"><t>トウキョウ</t></rPh><phoneticPr fontId="1"/></si>',
    "empty": "<si><t/></si>",
    "no t at all": "<si></si>",
    "escaped": "<si><t>R&amp;D &lt;team&gt;</t></si>",
    "Excel's _x escapes as openpyxl reads them": "<si><t>a_x005F_x000D_b</t></si>",
    "non-ASCII": "<si><t>Zoë Привет 🙂</t></si>",
}


@pytest.mark.parametrize("case", list(ITEMS))
def test_a_shared_text_reads_as_openpyxl_reads_it(case):
    """Golden cases: what the imports read for a cell is what openpyxl's own (whole-table) reader gives."""
    content = excel_workbook(
        [["Phone", ("s", 1)], [9812345678, ("s", 1)]], items=["<si><t>Phone</t></si>", ITEMS[case]]
    )
    expected = openpyxl.load_workbook(io.BytesIO(content)).active["B2"].value

    assert read(content) == [["Phone", expected or ""], ["9812345678", expected or ""]]


def test_a_table_written_with_a_namespace_prefix_reads_the_same():
    content = excel_workbook([[("s", 0), ("s", 1)]], items=[])
    prefixed = rewrite_part(
        content,
        "xl/sharedStrings.xml",
        f'<x:sst xmlns:x="{MAIN}"><x:si><x:t>Phone</x:t></x:si><x:si><x:r><x:t>Na</x:t></x:r><x:r><x:t>me</x:t>'
        "</x:r></x:si></x:sst>",
    )

    assert read(prefixed) == [["Phone", "Name"]]


def rewrite_part(content: bytes, name: str, xml: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for part in old.infolist():
            new.writestr(part.filename, xml.encode() if part.filename == name else old.read(part.filename))
    return out.getvalue()


# --- texts past those kept in memory ------------------------------------------------------------


def test_texts_past_those_kept_in_memory_are_read_back_from_disk_whatever_order_cells_ask_for_them(monkeypatch):
    """With 5 texts kept in memory and the rest written to the temporary file 50 bytes at a time, 400 distinct
    texts (some of several bytes a character), asked for out of order and again, read as written."""
    monkeypatch.setattr(xlsx_strings, "KEEP_IN_MEMORY", 5)
    monkeypatch.setattr(xlsx_strings, "SPILL_FLUSH_SIZE", 50)
    texts = ["Phone", "Name"] + [f"Имя {n} Zoë" if n % 3 else f"name {n}" for n in range(398)]
    order = [(n * 7) % 398 + 2 for n in range(398)] + [399, 2, 250, 3]  # out of order, some asked again
    rows = [[("s", 0), ("s", 1)]] + [[9812300000 + i, ("s", n)] for i, n in enumerate(order)]
    content = excel_workbook(rows, items=[f"<si><t>{text}</t></si>" for text in texts])

    assert read(content) == [["Phone", "Name"]] + [[str(9812300000 + i), texts[n]] for i, n in enumerate(order)]


def test_an_import_of_an_excel_file_takes_its_texts_past_those_kept_in_memory(monkeypatch):
    monkeypatch.setattr(xlsx_strings, "KEEP_IN_MEMORY", 10)
    monkeypatch.setattr(xlsx_strings, "SPILL_FLUSH_SIZE", 100)
    rows = [["Phone", "First name", "Email"]] + [
        [9812300000 + n, f"Asha {n}", f"asha{n}@example.com"] for n in range(300)
    ]
    contact_import = contact_import_run(
        import_id=contact_import_create(file=upload(excel_workbook(rows)), default_region="IN").pk
    )

    assert contact_import.status == Status.COMPLETED and contact_import.created == 300
    assert Contact.objects.get(phone="+919812300299").first_name == "Asha 299"
    assert Contact.objects.get(phone="+919812300299").email == "asha299@example.com"
    assert Contact.objects.get(phone="+919812300000").first_name == "Asha 0"


# --- broken tables ------------------------------------------------------------------------------


def test_a_header_referring_to_a_text_the_table_lacks_is_refused_on_upload_naming_it():
    content = excel_workbook([[("s", 0), ("s", 9)], [9812345678, ("s", 1)]], items=["<si><t>Phone</t></si>"] * 3)

    with pytest.raises(ValidationError) as refused:
        contact_import_create(file=upload(content))
    assert refused.value.message_dict["file"] == [
        "The workbook could not be read: a cell refers to shared text number 9, and the workbook has 3."
    ]


def test_a_row_further_down_referring_to_a_text_the_table_lacks_fails_the_import_saying_so():
    rows = [["Phone", "City"]] + [[9812300000 + n, "Pune"] for n in range(120)] + [[9812399999, ("s", 40)]]
    contact_import = contact_import_create(file=upload(excel_workbook(rows)), default_region="IN")

    contact_import = contact_import_run(import_id=contact_import.pk)

    assert contact_import.status == Status.FAILED
    assert contact_import.error_message == (
        "The workbook could not be read: a cell refers to shared text number 40, and the workbook has 3."
    )


def test_a_table_declaring_a_document_type_is_refused():
    """A document type can declare entities that expand to gigabytes; no spreadsheet program writes one."""
    content = excel_workbook(
        [[("s", 0)], [9812345678]],
        items=["<si><t>&big;</t></si>"],
        strings_head='<!DOCTYPE sst [<!ENTITY big "Phone Phone Phone">]>',
    )

    with pytest.raises(ValidationError) as refused:
        contact_import_create(file=upload(content))
    assert refused.value.message_dict["file"] == [
        "The workbook could not be read: its shared texts (xl/sharedStrings.xml) declare a document type."
    ]


def test_a_table_that_is_not_well_formed_is_refused_naming_the_part():
    content = excel_workbook([[("s", 0)], [9812345678]], items=["<si><t>Phone</t></si><si><t>broken</si>"])

    with pytest.raises(ValidationError) as refused:
        contact_import_create(file=upload(content))
    assert refused.value.message_dict["file"][0].startswith(
        "The workbook could not be read: its shared texts (xl/sharedStrings.xml) are not well-formed XML: mismatched tag"
    )


# --- size and memory ----------------------------------------------------------------------------


def test_a_sheet_that_states_no_size_is_read_to_its_last_row():
    rows = [["Phone", "City"]] + [[9812300000 + n, f"City {n % 4}"] for n in range(500)]

    assert read(excel_workbook(rows, dimension=False)) == [
        ["Phone", "City"],
        *([str(9812300000 + n), f"City {n % 4}"] for n in range(500)),
    ]


def prefixed_workbook(rows: int, *, stored: bool = False) -> bytes:
    """A sheet as some exporters write it: no stated size, its elements under a namespace prefix (x:row), inline
    texts, and page breaks (<x:rowBreaks>, not a row) after the data. `stored`: the sheet not compressed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        cells = "".join(
            f'<x:row r="{r}"><x:c r="A{r}" t="inlineStr"><x:is><x:t>{9812300000 + r}</x:t></x:is></x:c></x:row>'
            for r in range(2, rows + 2)
        )
        book.writestr(
            zipfile.ZipInfo("xl/worksheets/sheet1.xml") if stored else "xl/worksheets/sheet1.xml",
            f'<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{MAIN}"><x:sheetData>'
            '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>Phone</x:t></x:is></x:c></x:row>'
            f'{cells}</x:sheetData><x:rowBreaks count="1"><x:brk id="3"/></x:rowBreaks></x:worksheet>',
        )
        book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN}"></sst>')
        package_parts(book)
    return out.getvalue()


@pytest.mark.parametrize("block", [7, 40, 1 << 20])
def test_the_rows_of_a_sheet_that_states_no_size_are_counted_when_asked(monkeypatch, block):
    """For the import's progress and its row limit (scan): every row element once, whichever block of the inflated
    part it starts in or straddles, with or without a namespace prefix; <rowBreaks> is no row. Not for a quick look
    (the upload page's columns): then the size stays unknown."""
    monkeypatch.setattr(readers, "ROW_COUNT_BLOCK", block)
    plain = excel_workbook([["Phone", "City"]] + [[9812300000 + n, "Pune"] for n in range(500)], dimension=False)
    for content, rows in ((plain, 501), (prefixed_workbook(300), 301)):
        with open_sheet(io.BytesIO(content), "xlsx", scan=True) as sheet:
            assert sheet.lines == rows
            assert sum(1 for _ in sheet.rows) == rows  # the rows are read all the same after the count
        with open_sheet(io.BytesIO(content), "xlsx") as sheet:
            assert sheet.lines is None


def test_a_damaged_sheet_is_refused_when_its_rows_are_counted():
    """A byte changed in a sheet stored as is: its check (CRC) fails as the count reads it to the end."""
    content = prefixed_workbook(300, stored=True)
    damaged = content.replace(b"9812300150", b"9812300151", 1)
    assert damaged != content
    with pytest.raises(readers.FileProblem, match=r"^The workbook could not be read: its sheet is damaged \(Bad CRC"):
        open_sheet(io.BytesIO(damaged), "xlsx", scan=True)


def test_an_import_of_a_sheet_that_states_no_size_has_a_total_and_its_row_limit(settings):
    """Its progress bar has a total, and a sheet over the row limit is refused before any row is merged (before, the
    rows up to the limit were merged, then the import failed)."""
    rows = [["Phone"]] + [[9812300000 + n] for n in range(5)]
    totals = []
    done = contact_import_run(
        import_id=contact_import_create(file=upload(excel_workbook(rows, dimension=False))).pk,
        chunk_size=2, progress=lambda contact_import: totals.append(contact_import.rows_total),
    )  # fmt: skip
    assert done.status == Status.COMPLETED and done.created == 5
    assert done.rows_total == 5 and set(totals) == {5}

    rows = [["Phone"]] + [[9812400000 + n] for n in range(5)]
    waiting = contact_import_create(file=upload(excel_workbook(rows, dimension=False)))
    settings.IMPORT_MAX_ROWS = 3  # lowered after the upload: the run refuses it
    refused = contact_import_run(import_id=waiting.pk, chunk_size=2)
    assert refused.status == Status.FAILED
    assert refused.error_message == "The file has more than 3 rows, the most one import takes: split it."
    assert not Contact.objects.filter(phone__startswith="+919812400").exists()


def test_an_upload_of_a_sheet_that_states_no_size_over_the_row_limit_is_refused_at_once(settings):
    """As one that states its size is: the upload counts its rows (it was accepted, and failed when it ran). The
    page's look at its columns does not count them, and shows them."""
    settings.IMPORT_MAX_ROWS = 3
    content = excel_workbook([["Phone"]] + [[9812400000 + n] for n in range(5)], dimension=False)
    with pytest.raises(ValidationError) as refused:
        contact_import_create(file=upload(content))
    assert refused.value.message_dict == {
        "file": ["The file has more than 3 rows, the most one import takes: split it."]
    }
    assert not ContactImport.objects.exists()
    assert [column["name"] for column in contact_import_columns(file=upload(content))["columns"]] == ["Phone"]
    settings.IMPORT_MAX_ROWS = 5  # exactly at the limit: taken
    assert contact_import_create(file=upload(content)).status == Status.PENDING


def big_workbook(rows: int) -> bytes:
    """`rows` contacts, each with two texts of its own (an e-mail address, a customer reference): 2 × `rows`
    distinct shared texts."""
    return excel_workbook(
        [["Phone", "Email", "Reference"]]
        + [[9810000000 + n, f"person{n}@example.com", f"CUST-{n:08}-{n * 7919 % 100_000:05}"] for n in range(rows)]
    )


def traced_peak(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_workbook_of_60k_distinct_texts_holds_neither_its_texts_nor_its_rows(monkeypatch):
    """30,000 rows, 60,003 distinct texts, 5,000 of them kept in memory (50,000 in production). openpyxl alone holds
    every text and an emptied element per row read: 9.3 MB at the peak; here, 3.0 MB."""
    monkeypatch.setattr(xlsx_strings, "KEEP_IN_MEMORY", 5_000)
    content = big_workbook(30_000)
    rows = []

    def count():
        with open_sheet(io.BytesIO(content), "xlsx") as sheet:
            rows.append(sum(1 for _ in sheet.rows))

    peak = traced_peak(count)

    assert rows == [30_001]
    assert peak < 6 * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MB"


def test_the_upload_page_reads_a_large_workbooks_columns_without_reading_its_texts():
    """The columns of the upload page (a web request) come from the header: the shared texts past it are not read.
    openpyxl read all 200,003 first (30 MB at the peak here, ~1 MB now; 30 s and 170 MB for a million rows, past the
    web server's timeout)."""
    content = big_workbook(100_000)
    columns = []

    peak = traced_peak(lambda: columns.append(contact_import_columns(file=upload(content))))

    assert [column["name"] for column in columns[0]["columns"]] == ["Phone", "Email", "Reference"]
    assert peak < 4 * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MB"


def test_a_table_broken_once_says_so_on_every_later_lookup():
    """expat stops at its first error; a later lookup says the same, not that the text is missing."""
    strings = xlsx_strings.SharedStrings(io.BytesIO(f'<sst xmlns="{MAIN}"><si><t>a</t></si><si><t>b</si>'.encode()))
    for _ in range(2):
        with pytest.raises(xlsx_strings.SharedStringsProblem, match="are not well-formed XML: mismatched tag"):
            strings[1]
