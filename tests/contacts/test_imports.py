"""Contact imports through the services, on real PostgreSQL: file types, encodings, errors, merge rules,
progress, cancellation, resumption and bounded memory."""

from __future__ import annotations

import csv
import datetime
import io
import re
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import psutil
import pytest
from celery.exceptions import Retry

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections

from contacts.imports import contact_import_cancel, contact_import_create, contact_import_run
from contacts.imports.engine import KeyRows
from contacts.imports.services import LOCK_NAMESPACE, contact_import_columns
from contacts.models import Contact, ContactImport, ContactTag, Tag
from contacts.tasks import contact_import_run_task
from tests.concurrency import second_waits_on_first
from tests.import_reports import error_report_rows

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
Status = ContactImport.Status


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload(content: str | bytes, name: str = "contacts.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(encoding) if isinstance(content, str) else content)


def run(content, name="contacts.csv", *, chunk_size=None, progress=None, **kwargs) -> ContactImport:
    """Create an import from `content` and run it here (no worker), as the task would."""
    contact_import = contact_import_create(file=upload(content, name), **kwargs)
    return contact_import_run(import_id=contact_import.pk, chunk_size=chunk_size, progress=progress)


def report(contact_import: ContactImport) -> list[list[str]]:
    return error_report_rows(contact_import)


def counts(contact_import: ContactImport) -> dict:
    names = ["rows_read", "created", "updated", "unchanged", "invalid", "duplicates"]
    return {name: getattr(contact_import, name) for name in names}


def contact(phone: str) -> Contact:
    return Contact.objects.get(phone=phone)


GOOD_AND_BAD = [
    ["Phone", "First name", "Last name", "E-mail", "City"],
    ["9812345678", "Asha", "Rao", "asha@example.com", "Pune"],
    ["+91 98123 45679", "Ravi", "", "", "Delhi"],
    ["12345", "Short", "", "", ""],
    ["9812345680", "Meera", "", "meera@", ""],
]


def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


# --- file types -----------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_contact_import_reads_csv_with_any_delimiter(delimiter):
    contact_import = run(csv_text(GOOD_AND_BAD, delimiter))

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert counts(contact_import) == {
        "rows_read": 4,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "invalid": 2,
        "duplicates": 0,
    }
    asha = contact("+919812345678")
    assert (asha.first_name, asha.last_name, asha.email, asha.attributes) == (
        "Asha",
        "Rao",
        "asha@example.com",
        {"city": "Pune"},
    )
    assert contact("+919812345679").attributes == {"city": "Delhi"}
    assert report(contact_import) == [
        ["row", "column", "value", "reason"],
        ["4", "Phone", "12345", "not a valid phone number (E.164, or national for IN)"],
        ["5", "E-mail", "meera@", "not a valid e-mail address"],
    ]
    assert contact_import.mapping == {
        "Phone": "phone", "First name": "first_name", "Last name": "last_name", "E-mail": "email", "City": "attributes.city",
    }  # fmt: skip
    assert contact_import.file_format == "csv" and contact_import.rows_total == 4


@pytest.mark.parametrize(
    ("delimiter", "written"),
    [(",", ","), (";", ";"), ("\t", ","), ("|", ",")],
    ids=["comma", "semicolon", "tab", "pipe"],
)
def test_the_error_report_is_separated_as_excel_saved_the_file(delimiter, written):
    """A file Excel saved with semicolons (its list separator in France or Russia) got a comma-separated report,
    which the same Excel opens as one column: the report takes a semicolon file's semicolons. A tab or bar, which
    Excel does not split a .csv on, gets commas."""
    contact_import = run(csv_text(GOOD_AND_BAD, delimiter))
    with contact_import.error_report.open("rb") as fh:
        lines = fh.read().decode("utf-8-sig").splitlines()
    reason = "not a valid phone number (E.164, or national for IN)"
    assert lines[:2] == [
        written.join(["row", "column", "value", "reason"]),
        written.join(["4", "Phone", "12345", f'"{reason}"' if written == "," else reason]),
    ]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_contact_import_takes_the_delimiter_from_excels_sep_line_and_numbers_rows_after_it(line_end):
    contact_import = run(line_end.join(["sep=;", *csv_text(GOOD_AND_BAD, ";").splitlines()]) + line_end)

    assert counts(contact_import)["created"] == 2 and contact_import.rows_total == 4
    assert [line[:2] for line in report(contact_import)[1:]] == [["4", "Phone"], ["5", "E-mail"]]


def test_contact_import_reads_txt_one_number_per_line():
    content = "mobile\n9812345678\n\n+14155552671\nnot a phone\n0091 98123 45679\n"

    contact_import = run(content, "numbers.txt")

    assert contact_import.status == Status.COMPLETED
    assert sorted(Contact.objects.values_list("phone", flat=True)) == ["+14155552671", "+919812345678", "+919812345679"]
    assert counts(contact_import)["invalid"] == 1
    assert report(contact_import)[1:] == [
        ["5", "mobile", "not a phone", "not a valid phone number (E.164, or national for IN)"]
    ]


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])  # Excel's "Unicode Text" and "Text (Tab delimited)"
def test_contact_import_reads_excels_tab_separated_txt_exports_by_their_columns(encoding):
    """Excel saves a sheet as text in a .txt file, a row a line and a tab between cells. Before, each line was read
    whole as one phone number ("Asha<tab>9812345678"), and every row of the file was refused."""
    content = "Name\tMobile\tE-mail\r\nAsha\t9812345678\tasha@example.com\r\nJosé\t+91 98123 45679\t\r\n"

    contact_import = run(content.encode(encoding), "Contacts.txt")

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert counts(contact_import) | {"rows_read": 2, "created": 2, "invalid": 0} == counts(contact_import)
    assert contact_import.mapping == {"Name": "first_name", "Mobile": "phone", "E-mail": "email"}
    assert contact("+919812345678").email == "asha@example.com"
    assert contact("+919812345679").first_name == "José"


def test_contact_import_reads_a_headerless_csv_by_position():
    contact_import = run("9812345678,Asha\n9812345679,Ravi\n", mapping={"2": "first_name"})

    assert counts(contact_import)["created"] == 2
    assert contact("+919812345679").first_name == "Ravi"


def test_contact_import_reads_xlsx(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Mobile", "Name", "Birthday", "Score"])
    sheet.append([9812345678, "Asha", datetime.date(1990, 5, 31), 7.5])  # numbers as numbers, as Excel stores them
    sheet.append(["+919812345679", "Ravi", None, 10])
    sheet.append(["0", "Nobody", None, None])
    path = tmp_path / "contacts.xlsx"
    book.save(path)

    contact_import = run(path.read_bytes(), "contacts.xlsx")

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert contact_import.file_format == "xlsx"
    assert counts(contact_import) | {} == {
        "rows_read": 3,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "invalid": 1,
        "duplicates": 0,
    }
    asha = contact("+919812345678")
    assert asha.first_name == "Asha" and asha.attributes == {"birthday": "1990-05-31", "score": "7.5"}
    assert contact("+919812345679").attributes == {"score": "10"}
    assert report(contact_import)[1][:3] == ["4", "Mobile", "0"]


def test_contact_import_reads_every_row_and_column_of_an_xlsx_whatever_size_it_says_it_is(tmp_path):
    """Some programs store a wrong size in the sheet (its <dimension>); openpyxl would read no further than it says."""
    book = openpyxl.Workbook()
    book.active.append(["Mobile", "Name", "City"])
    for n in range(4):
        book.active.append([f"981234567{n}", f"Guest {n}", "Pune"])
    book.save(tmp_path / "right.xlsx")
    with zipfile.ZipFile(tmp_path / "right.xlsx") as right, zipfile.ZipFile(tmp_path / "wrong.xlsx", "w") as wrong:
        for item in right.infolist():
            data = right.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, replaced = re.subn(rb'<dimension ref="A1:C5"\s*/>', b'<dimension ref="B2:B3"/>', data)
                assert replaced == 1
            wrong.writestr(item, data)

    contact_import = run((tmp_path / "wrong.xlsx").read_bytes(), "contacts.xlsx")

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert counts(contact_import)["created"] == 4 and contact_import.invalid == 0
    assert contact("+919812345673").attributes == {"city": "Pune"}


def test_contact_import_takes_a_workbook_whose_size_goes_far_below_its_rows(tmp_path, settings):
    """A cell formatted at the foot of the sheet (bold, a border: no value) makes the size the workbook states run to
    row 1,048,576. Its upload was refused, "more than 1,000,000 rows", for a file of two."""
    book = openpyxl.Workbook()
    book.active.append(["Mobile", "Name"])
    book.active.append([9812345678, "Asha"])
    book.active.append([9812345679, "Ravi"])
    book.active.cell(row=1_048_576, column=1).font = openpyxl.styles.Font(bold=True)
    book.save(tmp_path / "contacts.xlsx")
    totals = []

    contact_import = run((tmp_path / "contacts.xlsx").read_bytes(), "contacts.xlsx",
                         progress=lambda contact_import: totals.append(contact_import.rows_total))  # fmt: skip

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert contact_import.created == 2 and totals == [2]

    settings.IMPORT_MAX_ROWS = 1  # a workbook truly over the limit is still refused at upload
    with pytest.raises(ValidationError, match="The file has more than 1 rows"):
        contact_import_create(file=upload((tmp_path / "contacts.xlsx").read_bytes(), "contacts.xlsx"))


def test_contact_import_reads_xls():
    contact_import = run((FIXTURES / "contacts.xls").read_bytes(), "contacts.xls", tags=["from-xls"])

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert counts(contact_import) == {
        "rows_read": 5,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "invalid": 2,
        "duplicates": 1,
    }
    asha = contact("+919812345678")
    assert asha.first_name == "Asha" and asha.attributes == {"city": "Pune", "joined": "2024-05-31"}
    assert contact("+919812345679").first_name == "José"
    assert report(contact_import)[1:] == [
        ["4", "Mobile", "12345", "not a valid phone number (E.164, or national for IN)"],
        ["5", "Email", "not-an-email", "not a valid e-mail address"],
        ["6", "Mobile", "9812345678", "same phone number as row 2, which is kept"],
    ]


def test_contact_import_reads_the_sheet_an_xls_was_saved_showing():
    """As for xlsx (its active sheet). Before, an xls was read from its first sheet: here a note, "no phone"."""
    contact_import = run((FIXTURES / "second_sheet_active.xls").read_bytes(), "contacts.xls")

    assert counts(contact_import)["created"] == 1 and contact_import.invalid == 0
    assert contact("+919812345678").first_name == "Asha"


def test_contact_import_reads_csv_saved_under_an_xls_name():
    contact_import = run("Mobile\tName\n9812345678\tAsha\n", "export.xls")

    assert contact_import.file_format == "csv" and counts(contact_import)["created"] == 1


def test_contact_import_reads_excels_xml_spreadsheet_2003_saved_under_an_xls_name():
    """Some systems export Excel 2003's XML workbook named .xls; Excel opens it. It was read as csv, one row of
    markup, and refused as one bad phone number. Its first worksheet's rows are read, a cell after empty ones in the
    column its ss:Index gives."""
    workbook = """<?xml version="1.0"?>
<?mso-application progid="Excel.Sheet"?>
<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">
 <Worksheet ss:Name="Contacts"><Table>
  <Row><Cell><Data ss:Type="String">Mobile</Data></Cell><Cell><Data ss:Type="String">Name</Data></Cell>
   <Cell><Data ss:Type="String">City</Data></Cell></Row>
  <Row><Cell><Data ss:Type="Number">9812345678</Data></Cell><Cell ss:Index="3"><Data ss:Type="String">Pune</Data></Cell></Row>
  <Row><Cell><Data ss:Type="String">+91 98123 45679</Data></Cell><Cell><Data ss:Type="String">Zoë</Data></Cell></Row>
 </Table></Worksheet>
 <Worksheet ss:Name="Notes"><Table><Row><Cell><Data ss:Type="String">12345</Data></Cell></Row></Table></Worksheet>
</Workbook>"""

    contact_import = run(workbook, "export.xls")

    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert counts(contact_import) | {"rows_read": 2, "created": 2, "invalid": 0} == counts(contact_import)
    assert contact("+919812345678").attributes == {"city": "Pune"} and not contact("+919812345678").first_name
    assert contact("+919812345679").first_name == "Zoë"


def test_contact_import_reads_cells_a_csv_wrote_for_excel_as_text_formulas():
    """="0612345678" keeps a leading zero when Excel opens the file; the e-mail and names were read with their ="…"
    (an e-mail so written was refused, a name stored as ="Zoë")."""
    content = 'Mobile;Name;E-mail\n="0612345678";="Zoë";="zoe@example.fr"\n="0612345679";Luc;luc@example.fr\n'

    contact_import = run(content, default_region="FR")

    assert counts(contact_import) | {"created": 2, "invalid": 0} == counts(contact_import)
    zoe = contact("+33612345678")
    assert (zoe.first_name, zoe.email) == ("Zoë", "zoe@example.fr")


# --- encodings ------------------------------------------------------------------------------------


def test_contact_import_reads_utf8_with_bom():
    contact_import = run(("\ufeffMobile;Name\n9812345678;Zoë\n").encode())

    assert contact_import.mapping == {"Mobile": "phone", "Name": "first_name"}
    assert contact("+919812345678").first_name == "Zoë"


def test_contact_import_falls_back_to_latin1():
    content = "Mobile,First name,Last name\n9812345678,José,Núñez\n9812345679,Zoë,Müller\n".encode("latin-1")

    contact_import = run(content)

    assert counts(contact_import)["created"] == 2
    assert (contact("+919812345678").first_name, contact("+919812345678").last_name) == ("José", "Núñez")
    assert contact("+919812345679").last_name == "Müller"


def test_contact_import_reads_windows_1252_symbols():
    content = "Mobile,Plan\n9812345678,Gold €5\n".encode("cp1252")

    run(content)

    assert contact("+919812345678").attributes == {"plan": "Gold €5"}


def test_contact_import_reads_a_latin1_row_in_a_utf8_file_without_garbling_the_utf8_rows(settings):
    """A row pasted in from a Windows export, past the first megabyte the upload's check reads."""
    utf8 = "".join(f"98{n:08d},Zoë,Pondichéry\n" for n in range(60_000)).encode()
    content = b"Mobile,First name,City\n" + utf8 + "9700000000,José,Núñez €\n".encode("cp1252")
    assert len(content) > 1 << 20

    contact_import = run(content)

    assert counts(contact_import)["created"] == 60_001 and counts(contact_import)["invalid"] == 0
    assert contact("+919800000000").first_name == "Zoë"
    assert contact("+919800000000").attributes == {"city": "Pondichéry"}
    assert contact("+919700000000").first_name == "José"
    assert contact("+919700000000").attributes == {"city": "Núñez €"}


def test_contact_import_reads_the_bytes_windows_1252_leaves_undefined_as_latin1():
    run(b"Mobile,Note\n9812345678,a\x81b\xe9\n")

    assert contact("+919812345678").attributes == {"note": "a\x81b\xe9"}


def test_contact_import_reads_a_russian_excel_csv_in_windows_1251():
    """Russian Excel saves "CSV (разделители — точки с запятой)" in Windows-1251. Before, its letters were read as
    Windows-1252 ("Ôžäîð"), and an uppercase letter before "ё" as UTF-8 ("Ф" + "ё" made "ĸ")."""
    content = "Телефон;Имя;Фамилия;Город\n9812345678;Фёдор;Пётр-Семёнов;Москва\n9812345679;Ян;Ёлкин;№ 5\n"

    contact_import = run(content.encode("cp1251"))

    assert contact_import.mapping == {
        "Телефон": "phone",
        "Имя": "first_name",
        "Фамилия": "last_name",
        "Город": "attributes.город",
    }
    assert counts(contact_import)["created"] == 2 and contact_import.invalid == 0
    fyodor, yan = contact("+919812345678"), contact("+919812345679")
    assert (fyodor.first_name, fyodor.last_name, fyodor.attributes) == ("Фёдор", "Пётр-Семёнов", {"город": "Москва"})
    assert (yan.first_name, yan.last_name, yan.attributes) == ("Ян", "Ёлкин", {"город": "№ 5"})


def test_contact_import_reads_windows_1251_whose_cyrillic_starts_past_the_first_megabyte():
    """The guess is made on the first block that is not UTF-8: before, only the first megabyte was looked at, and
    rows of digits and Latin names there made "Фёдор" read as "Ըäîð", stored without a word."""
    rows = "".join(f"97{n:08d};Ivan\n" for n in range(90_000))
    content = ("Phone;Name\n" + rows + "9812345678;Фёдор\n").encode("cp1251")
    assert content.index("Фёдор".encode("cp1251")) > 1 << 20

    run(content)

    assert contact("+919812345678").first_name == "Фёдор"


def test_contact_import_keeps_reading_latin1_and_utf8_cyrillic_as_they_are():
    """The Windows-1251 guess takes neither accented Latin words nor a UTF-8 Russian file with a Latin-1 row."""
    run("Mobile,First name\n9812345678,Conceição\n".encode("cp1252"))
    assert contact("+919812345678").first_name == "Conceição"

    utf8 = "Mobile,Имя\n" + "".join(f"97{n:08d},Фёдор\n" for n in range(100))
    run(utf8.encode() + "9700000999,José Müller\n".encode("cp1252"))
    assert contact("+919700000000").first_name == "Фёдор"
    assert contact("+919700000999").first_name == "José Müller"


# --- bad rows -------------------------------------------------------------------------------------


def test_contact_import_reports_each_bad_row_with_its_column_and_reason():
    rows = [
        ["Mobile", "Email", "First name", "Country", "Timezone", "Language"],
        ["9812345678", "ok@example.com", "Good", "in", "asia/kolkata", "hi"],
        ["", "", "No phone", "", "", ""],
        ["98123", "", "", "", "", ""],
        ["9812345679", "x@", "", "", "", ""],
        ["9812345680", "", "A" * 101, "", "", ""],
        ["9812345681", "", "", "Atlantis", "", ""],
        ["9812345682", "", "", "", "Mars/Base", ""],
        ["9812345683", "", "", "", "", "a-very-long-language"],
    ]

    contact_import = run(csv_text(rows))

    assert contact_import.status == Status.COMPLETED
    assert counts(contact_import)["created"] == 1 and contact_import.invalid == 7
    good = contact("+919812345678")
    assert (good.country, good.timezone, good.language) == ("IN", "Asia/Kolkata", "hi")
    assert [line[:2] + line[3:] for line in report(contact_import)[1:]] == [
        ["3", "Mobile", "no phone number"],
        ["4", "Mobile", "not a valid phone number (E.164, or national for IN)"],
        ["5", "Email", "not a valid e-mail address"],
        ["6", "First name", "longer than 100 characters"],
        ["7", "Country", "not a country: give its two-letter code (ISO 3166, e.g. IN) or its name in English (India)"],
        ["8", "Timezone", "not a known time zone (e.g. Asia/Kolkata)"],
        ["9", "Language", "longer than 10 characters"],
    ]


def test_a_time_zone_abbreviation_is_read_in_the_rows_country_or_its_numbers():
    """Spreadsheets write "IST": India's time for an Indian number, Israel's for a row whose country is Israel;
    a row where it names none of its zones is reported with them."""
    rows = [
        ["Mobile", "Country", "Timezone"],
        ["9812345678", "", "IST"],
        ["9812345679", "Israel", "ist"],
        ["+447400123456", "", "BST"],
        ["+79161234567", "", "MSK"],
        ["+14155550123", "", "IST"],
    ]
    contact_import = run(csv_text(rows))
    assert counts(contact_import)["created"] == 4 and contact_import.invalid == 1
    zones = dict(Contact.objects.values_list("phone", "timezone"))
    assert zones == {
        "+919812345678": "Asia/Kolkata",
        "+919812345679": "Asia/Jerusalem",
        "+447400123456": "Europe/London",
        "+79161234567": "Europe/Moscow",
    }
    assert [line[:2] + line[3:] for line in report(contact_import)[1:]] == [
        [
            "6",
            "Timezone",
            "an abbreviation of several time zones (Asia/Kolkata, Asia/Jerusalem or Europe/Dublin), none of them in "
            "the contact's country (US): give the zone",
        ]
    ]


def test_a_country_column_may_hold_names_and_is_stored_as_codes():
    """CRM exports write the country out: "India" is IN, as "in" is, and "UK" GB; a name or two letters that are no
    country is a bad row."""
    rows = [
        ["Mobile", "Country"],
        ["9812345670", "India"],
        ["9812345671", " russia "],
        ["9812345672", "The Netherlands"],
        ["9812345673", "USA"],
        ["9812345674", "United  States"],
        ["9812345675", "in"],
        ["9812345676", "Côte d'Ivoire"],
        ["9812345677", "Narnia"],
        ["9812345678", "UK"],
        ["9812345679", "ZZ"],  # two letters that are no country's code were stored as written
        ["9812345680", "xk"],  # Kosovo: a region of phone numbers, not yet in ISO 3166
    ]

    contact_import = run(csv_text(rows))

    assert counts(contact_import)["created"] == 9 and contact_import.invalid == 2
    assert dict(Contact.objects.values_list("phone", "country")) == {
        "+919812345670": "IN",
        "+919812345671": "RU",
        "+919812345672": "NL",
        "+919812345673": "US",
        "+919812345674": "US",
        "+919812345675": "IN",
        "+919812345676": "CI",
        "+919812345678": "GB",
        "+919812345680": "XK",
    }
    assert [line[:2] + line[3:] for line in report(contact_import)[1:]] == [
        ["9", "Country", "not a country: give its two-letter code (ISO 3166, e.g. IN) or its name in English (India)"],
        ["11", "Country", "not a country: give its two-letter code (ISO 3166, e.g. IN) or its name in English (India)"],
    ]


def test_the_error_report_never_hands_a_spreadsheet_a_formula_to_run():
    """The report opens in Excel (it has a BOM for that): a bad cell it would run as a formula is quoted as text."""
    rows = [
        ["Mobile", "=cmd|' /C calc'!A0"],
        ['=HYPERLINK("http://evil.example","click")', "x"],
        ["@SUM(1+1)", "x"],
        ["+1+cmd|' /C calc'!A0", "x"],
        ["-2+3", "x"],
        ["+91 98123-456", "x"],  # a wrong number, shown as written
    ]

    contact_import = run(csv_text(rows))

    assert [line[2] for line in report(contact_import)[1:]] == [
        '\'=HYPERLINK("http://evil.example","click")',
        "'@SUM(1+1)",
        "'+1+cmd|' /C calc'!A0",
        "'-2+3",
        "+91 98123-456",
    ]


def test_contact_import_reads_numbers_a_spreadsheet_wrote_as_decimals_and_explains_rounded_ones():
    """A number column exported as decimals ("9812345678.0") is read as the number; one shown in scientific notation
    has lost digits and is refused saying so (a phone parser reads the dot as a separator: one digit too many)."""
    rows = [["Mobile"], ["9812345678.0"], ["919812345679.00"], ["+919812345680.0"], ["+9.19812e+11"], ["98123.5"]]

    contact_import = run(csv_text(rows))

    assert sorted(Contact.objects.values_list("phone", flat=True)) == [
        "+919812345678",
        "+919812345679",
        "+919812345680",
    ]
    assert [line[:1] + line[2:] for line in report(contact_import)[1:]] == [
        ["5", "'+9.19812e+11", "a number in scientific notation, as a spreadsheet shows a long number, which has lost "
         "its last digits: format the column as text and export again"],
        ["6", "98123.5", "not a valid phone number (E.164, or national for IN)"],
    ]  # fmt: skip


@pytest.mark.parametrize("title", ["Phone Numbers", "Contact No.", "Contacts", "Customer list 2024"])
def test_contact_import_takes_the_only_column_of_a_file_for_the_phone_whatever_its_title(title):
    contact_import = run(f"{title}\n9812345678\n9812345679\n")

    assert contact_import.status == Status.COMPLETED, contact_import.error
    assert counts(contact_import)["created"] == 2 and contact_import.invalid == 0
    assert contact_import.mapping == {title: "phone"}


def test_contact_import_keeps_a_column_titled_with_digits_by_its_position():
    """A mapping reads a digit key as a position: the stored mapping names such a column by position, not "2024"."""
    contact_import = run("Phone,2024\n9812345678,Asha\n")
    only_column = run("2024\n9812345679\n")

    assert contact_import.status == only_column.status == Status.COMPLETED, (contact_import.error, only_column.error)
    assert contact_import.mapping == {"Phone": "phone", "2": "attributes.2024"} and only_column.mapping == {
        "1": "phone"
    }
    assert contact("+919812345678").attributes == {"2024": "Asha"} and contact("+919812345679")


@pytest.mark.parametrize("title", ["Contact No.", "Mobile Numbers", "Mob No", "Numbers"])
def test_contact_import_knows_more_titles_of_a_phone_column(title):
    contact_import = run(f"Full name,{title}\nAsha Rao,9812345678\n")

    assert contact_import.mapping == {"Full name": "first_name", title: "phone"}
    assert contact("+919812345678").first_name == "Asha Rao"


def test_contact_import_does_not_take_a_title_above_the_header_for_the_phone_column():
    """A sheet with a title in A1 above its header row is not a one-column file: refused, as it says why."""
    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload("Customer list\nName,Mobile phone no\nAsha,9812345678\n"))

    assert "No phone column" in error.value.message_dict["mapping"][0]


def test_contact_import_passes_over_a_reports_title_rows_above_its_header(tmp_path):
    """A report exported from another system starts with its title (a merged cell) and the date it was made; the
    header is below. It was refused: "No phone column … Columns: 'Customers of the Pune branch'"."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Customers of the Pune branch"])
    sheet.merge_cells("A1:C1")
    sheet.append([f"Exported on {datetime.date(2024, 5, 31):%d/%m/%Y}"])
    sheet.append([])
    sheet.append(["Name", "Mobile", "City"])
    sheet.append(["Asha", 9812345678, "Pune"])
    sheet.append(["Ravi", "0000", "Pune"])
    book.save(tmp_path / "report.xlsx")
    content = (tmp_path / "report.xlsx").read_bytes()

    columns = contact_import_columns(file=upload(content, "report.xlsx"))
    contact_import = run(content, "report.xlsx")

    assert [(column["name"], column["target"], column["sample"]) for column in columns["columns"]] == [
        ("Name", "first_name", "Asha"),
        ("Mobile", "phone", "9812345678"),
        ("City", "attributes.city", "Pune"),
    ]
    assert columns["problem"] == ""
    assert contact_import.status == Status.COMPLETED, contact_import.error_message
    assert counts(contact_import) | {"rows_read": 2, "created": 1, "invalid": 1} == counts(contact_import)
    assert contact("+919812345678").attributes == {"city": "Pune"}
    assert report(contact_import)[1][:3] == ["6", "Mobile", "0000"]  # numbered as the sheet numbers it


def test_contact_import_passes_over_a_csv_title_row_and_keeps_a_one_column_title_as_before():
    contact_import = run("Customer list;;\nName;Mobile;City\nAsha;9812345678;Pune\n")
    one_column = run("Opt-in numbers\n9812345679\n", "numbers.csv")

    assert contact_import.mapping == {"Name": "first_name", "Mobile": "phone", "City": "attributes.city"}
    assert contact("+919812345678").first_name == "Asha"
    assert one_column.mapping == {"Opt-in numbers": "phone"} and one_column.created == 1


def test_contact_import_still_wants_a_phone_column_when_the_only_column_is_another_field():
    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload("Name\nAsha\n"))

    assert "No phone column" in error.value.message_dict["mapping"][0]


def test_contact_import_keeps_cells_past_the_last_titled_column_as_attributes():
    contact_import = run("Phone,Name\n9812345678,Asha,Pune,\n9812345679,Ravi\n9812345680,Meera,,VIP\n")

    assert counts(contact_import)["created"] == 3 and contact_import.invalid == 0
    assert contact("+919812345678").attributes == {"column_3": "Pune"}
    assert contact("+919812345679").attributes == {}
    assert contact("+919812345680").attributes == {"column_4": "VIP"}


def test_contact_import_drops_nul_characters_from_cells_and_titles():
    """A NUL in a cell that became an attribute failed the whole import (jsonb cannot hold one)."""
    content = b"Phone,First name,No\x00te\n9812345678,Asha,ok\n98123\x0045679,Ra\x00vi,a\x00b\x00\n"

    contact_import = run(content)

    assert (contact_import.status, contact_import.created, contact_import.invalid) == (Status.COMPLETED, 2, 0)
    assert contact("+919812345678").attributes == {"note": "ok"}
    ravi = contact("+919812345679")
    assert (ravi.first_name, ravi.attributes) == ("Ravi", {"note": "ab"})


def test_contact_import_drops_nul_characters_from_a_txt_file():
    contact_import = run(b"9812345678\n98123\x0045679\n", "numbers.txt")

    assert (contact_import.status, contact_import.created) == (Status.COMPLETED, 2)


def test_contact_import_reads_national_numbers_in_the_imports_region():
    contact_import = run("Phone\n0612345678\n06 12 34 56 79\n", default_region="fr")

    assert contact_import.default_region == "FR"
    assert sorted(Contact.objects.values_list("phone", flat=True)) == ["+33612345678", "+33612345679"]


def test_an_imports_region_written_uk_is_great_britain():
    # "UK" was refused as an unknown country: ISO 3166 reserves it for the United Kingdom, whose code is GB.
    contact_import = run("Phone\n07400 123456\n", default_region="uk")

    assert contact_import.default_region == "GB"
    assert list(Contact.objects.values_list("phone", flat=True)) == ["+447400123456"]


# --- duplicates, re-import, modes -----------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 2], ids=["one chunk", "across chunks"])
def test_contact_import_collapses_duplicates_keeping_the_first(chunk_size, mergers):
    content = "Phone,Name\n9812345678,First\n+919812345678,Second\n9812345679,Other\n98123 45678,Third\n"

    contact_import = run(content, chunk_size=chunk_size)

    assert counts(contact_import) == {
        "rows_read": 4,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "invalid": 0,
        "duplicates": 2,
    }
    assert contact("+919812345678").first_name == "First"
    # The rows left out are named in the error report (they were counted only: "Second" and "Third" went unsaid).
    assert report(contact_import)[1:] == [
        ["3", "Phone", "+919812345678", "same phone number as row 2, which is kept"],
        ["5", "Phone", "98123 45678", "same phone number as row 2, which is kept"],
    ]


def test_the_keys_seen_keep_the_row_each_came_first_on_as_they_grow():
    """What names the row kept beside a duplicate in the report: grown from the smallest table (a file whose size is
    not known beforehand), every key still answers its first row."""
    seen = KeyRows()
    keys = [(n * 0x9E3779B97F4A7C15) % (1 << 62) + 1 for n in range(100_000)]
    assert all(seen.first_row(key, row) == 0 for row, key in enumerate(keys, start=2))
    assert [seen.first_row(key, 1) for key in keys[::9973]] == list(range(2, 100_002, 9973))


def test_contact_import_run_twice_on_the_same_file_changes_nothing(mergers):
    content = csv_text(GOOD_AND_BAD)
    first = run(content, tags=["vip"])
    stamps = dict(Contact.objects.values_list("phone", "updated_at"))

    again = run(content, tags=["vip"], chunk_size=1)

    assert counts(first) == {"rows_read": 4, "created": 2, "updated": 0, "unchanged": 0, "invalid": 2, "duplicates": 0}
    assert counts(again) == {"rows_read": 4, "created": 0, "updated": 0, "unchanged": 2, "invalid": 2, "duplicates": 0}
    assert dict(Contact.objects.values_list("phone", "updated_at")) == stamps
    assert ContactTag.objects.count() == 2


def test_contact_import_create_and_update_fills_in_existing_contacts():
    Contact.objects.create(
        phone="+919812345678", first_name="Old", email="old@example.com", attributes={"a": "1", "city": "Goa"}
    )
    content = "Phone,First name,Email,City,Plan\n9812345678,New,,Pune,gold\n9812345679,Fresh,,,\n"

    contact_import = run(content, mode=ContactImport.Mode.CREATE_UPDATE)

    assert counts(contact_import) == {
        "rows_read": 2,
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "invalid": 0,
        "duplicates": 0,
    }
    updated = contact("+919812345678")
    assert updated.first_name == "New"
    assert updated.email == "old@example.com"  # an empty cell leaves the field alone
    assert updated.attributes == {"a": "1", "city": "Pune", "plan": "gold"}  # merged, the file's keys win


def test_contact_import_create_only_leaves_existing_contacts_but_tags_them():
    Contact.objects.create(phone="+919812345678", first_name="Old")

    contact_import = run("Phone,First name\n9812345678,New\n9812345679,Fresh\n", mode="create_only", tags=["diwali"])

    assert counts(contact_import) == {
        "rows_read": 2,
        "created": 1,
        "updated": 0,
        "unchanged": 1,
        "invalid": 0,
        "duplicates": 0,
    }
    assert contact("+919812345678").first_name == "Old"
    assert set(Tag.objects.get(name="diwali").contacts.values_list("phone", flat=True)) == {
        "+919812345678",
        "+919812345679",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("mode", "first_name"), [("create_update", "Mine"), ("create_only", "Other")])
def test_contact_import_tags_a_contact_another_client_committed_while_the_merge_waited_for_it(mode, first_name):
    """Another import's chunk (or the API) inserts one of the file's numbers and commits while this import's merge
    waits on it: the merge updates (or, create only, skips) that contact, and it still gets the import's tags."""
    contact_import = contact_import_create(
        file=upload("phone,first_name\n+919812340001,Mine\n+919812340002,New\n"), tags=["diwali"], mode=mode
    )
    done = {}

    second_waits_on_first(
        lambda: Contact.objects.create(phone="+919812340001", first_name="Other"),
        lambda: done.update(run=contact_import_run(import_id=contact_import.pk)),
        statement="WITH merged AS",
    )

    assert done["run"].status == Status.COMPLETED
    assert contact("+919812340001").first_name == first_name
    assert set(Tag.objects.get(name="diwali").contacts.values_list("phone", flat=True)) == {
        "+919812340001",
        "+919812340002",
    }


def test_contact_import_applies_its_tags_to_every_good_row():
    existing = Tag.objects.create(name="customers")
    Contact.objects.create(phone="+919812345678")

    contact_import = run(csv_text(GOOD_AND_BAD), tags=[existing, "march", "march", existing.pk])

    assert sorted(contact_import.tags.values_list("name", flat=True)) == ["customers", "march"]
    linked = ContactTag.objects.values_list("contact__phone", "tag__name")
    assert sorted(linked) == [
        ("+919812345678", "customers"), ("+919812345678", "march"),
        ("+919812345679", "customers"), ("+919812345679", "march"),
    ]  # fmt: skip


def test_contact_import_tags_named_in_another_case_are_the_existing_tags():
    vip = Tag.objects.create(name="VIP")

    contact_import = run(csv_text(GOOD_AND_BAD), tags=["vip", "Vip", "March"])

    assert sorted(contact_import.tags.values_list("name", flat=True)) == ["March", "VIP"]
    assert Tag.objects.count() == 2
    assert ContactTag.objects.filter(tag=vip).count() == 2


def test_contact_import_maps_columns_as_told_and_drops_empty_targets():
    content = "Cell,Who,Notes,Seg\n9812345678,Asha,secret,A\n"

    contact_import = run(
        content, mapping={"cell": "phone", "WHO": "last_name", "Notes": "", "Seg": "attributes.segment"}
    )

    asha = contact("+919812345678")
    assert asha.last_name == "Asha" and asha.attributes == {"segment": "A"}
    assert contact_import.mapping == {"Cell": "phone", "Who": "last_name", "Notes": "", "Seg": "attributes.segment"}


def test_contact_import_reads_titles_in_any_script_and_keys_attributes_by_them():
    content = "Телефон,Фамилия,Имя,Prénom,Âge,नाम\n9812345678,Петров,Иван,Jean,40,राम\n"

    contact_import = run(content, mapping={"Телефон": "phone", "Фамилия": "last_name", "имя": "first_name"})

    ivan = contact("+919812345678")
    assert (ivan.first_name, ivan.last_name) == ("Иван", "Петров")
    assert ivan.attributes == {"prenom": "Jean", "age": "40", "column_6": "राम"}  # {{नाम}} cannot be a variable
    assert contact_import.mapping == {
        "Телефон": "phone", "Фамилия": "last_name", "Имя": "first_name",
        "Prénom": "attributes.prenom", "Âge": "attributes.age", "नाम": "attributes.column_6",
    }  # fmt: skip


def test_contact_import_knows_russian_french_and_hindi_titles_without_a_mapping():
    run("Телефон,Имя,Фамилия\n9812345678,Иван,Петров\n")
    run("Portable,Prénom,Nom de famille,Courriel\n9812345679,Zoé,Martin,zoe@example.com\n")
    run("मोबाइल,नाम\n9812345680,राम\n")

    assert (contact("+919812345678").first_name, contact("+919812345678").last_name) == ("Иван", "Петров")
    zoe = contact("+919812345679")
    assert (zoe.first_name, zoe.last_name, zoe.email) == ("Zoé", "Martin", "zoe@example.com")
    assert contact("+919812345680").first_name == "राम"


def test_contact_import_knows_an_accented_title():
    run("Téléphone,Prénom\n9812345678,Zoé\n", mapping={"Prénom": "first_name"})

    assert contact("+919812345678").first_name == "Zoé"


def test_contact_import_keeps_columns_of_the_same_name_apart():
    contact_import = run("Phone,City,City\n9812345678,Pune,Mumbai\n")

    assert contact_import.mapping == {"Phone": "phone", "2": "attributes.city", "3": "attributes.city_2"}
    assert contact("+919812345678").attributes == {"city": "Pune", "city_2": "Mumbai"}


# --- checks before anything is written ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "field", "message"),
    [
        ("contacts.pdf", "x", {}, "file", "Unsupported file type '.pdf'"),
        ("contacts.csv", "", {}, "file", "The file is empty."),
        ("contacts.csv", "\n\n", {}, "file", "The file has no rows."),
        ("contacts.xlsx", "not a workbook", {}, "file", "not a valid xlsx"),
        ("contacts.csv", "Name,City\nAsha,Pune\n", {}, "mapping", "No phone column"),
        ("contacts.csv", "Phone\n1\n", {"mapping": {"Mobile": "phone"}}, "mapping", "The file has no column 'Mobile'"),
        ("contacts.csv", "Phone\n1\n", {"mapping": {"Phone": "fax"}}, "mapping", "Unknown field 'fax'"),
        (
            "contacts.csv",
            "Phone,Cell\n1,2\n",
            {"mapping": {"Phone": "phone", "Cell": "phone"}},
            "mapping",
            "both mapped to phone",
        ),
        (
            "contacts.csv",
            "Phone,Name\n1,2\n",
            {"mapping": {"Phone": "phone", "1": "identity"}},
            "mapping",
            "Column 'Phone' is mapped twice",
        ),
        ("contacts.csv", "Phone\n1\n", {"default_region": "XX"}, "default_region", "Unknown country 'XX'"),
        ("contacts.csv", "Phone\n1\n", {"mode": "replace"}, "mode", "Unknown mode"),
        ("contacts.csv", "Phone\n1\n", {"kind": "orders"}, "kind", "Unknown kind"),
        ("contacts.csv", "Phone\n1\n", {"options": {"scope": "all"}}, "options", "takes no options"),
        ("contacts.csv", "Phone\n1\n", {"tags": [999999]}, "tags", "No tag with id 999999"),
    ],
)
def test_contact_import_create_refuses_a_bad_upload_naming_the_field(name, content, kwargs, field, message):
    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload(content, name), **kwargs)

    assert field in error.value.message_dict
    assert message in " ".join(error.value.message_dict[field])
    assert not ContactImport.objects.exists() and not Tag.objects.exists()


XLS_CUT_AT_CTRL_Z = b"\xd0\xcf\x11\xe0\xa1\xb1"  # copied as text: it ends at the 0x1A of the OLE2 signature
XLS = (FIXTURES / "contacts.xls").read_bytes()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("contacts.xls", XLS_CUT_AT_CTRL_Z),
        ("contacts.xls", b"\xd0\xcf\x11\xe0 damaged past its first bytes"),
        ("contacts.xls", (FIXTURES / "contacts.xls").read_bytes()[:2000]),  # cut short
        ("contacts.csv", XLS_CUT_AT_CTRL_Z),  # a workbook named as text
        ("contacts.xls", XLS[:1]),  # was read as csv: "No phone column: … Columns: 'Ð'."
        ("contacts.xls", XLS[:2]),
    ],
    ids=["signature cut short", "signature damaged", "workbook cut short", "named csv", "one byte", "two bytes"],
)
def test_a_damaged_xls_is_refused_as_one_not_read_as_csv(name, content):
    """An .xls whose signature is damaged or cut short was read as csv, and refused for its header as text:
    "No phone column … 'ÐÏ…'". It is the workbook it starts as, and its refusal says so; what xlrd noticed goes to
    the log, not to the server's standard output."""
    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload(content, name))

    assert list(error.value.message_dict) == ["file"]
    (message,) = error.value.message_dict["file"]
    assert message.startswith("This .xls workbook could not be read: ") and "ÐÏ" not in message
    assert message.endswith("Open it in Excel and save it again, or save it as csv.")
    assert not ContactImport.objects.exists()


@pytest.mark.parametrize(
    ("size", "said"),
    [
        (8, ""),  # was (Expected "little-endian" marker, found b'')
        (29, ""),  # was (… found b'\xfe')
        (100, ""),  # was (file size (100) not 512 + multiple of sector size (512))
        (2000, " (File is truncated, or OLE2 MSAT is corrupt)"),
        (4096, " (File is truncated, or OLE2 MSAT is corrupt)"),  # a whole number of sectors: one warning only
        (5000, ""),  # was (file size (5000) not 512 + multiple of sector size (512))
        (5532, ""),  # the same, then struct's "unpack requires…"
    ],
)
def test_a_truncated_xls_is_refused_in_words_a_person_reads(size, said):
    """A real .xls cut short was refused with the words of the IndexError xlrd stumbled on: "This .xls workbook could
    not be read: array index out of range.", while xlrd had warned "File is truncated, or OLE2 MSAT is corrupt". Its
    other words, of sector sizes and the bytes it found written as Python writes them, are left out."""
    truncated = XLS[:size]

    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload(truncated, "contacts.xls"))

    assert error.value.message_dict == {
        "file": [
            f"This .xls workbook could not be read: it is damaged or incomplete{said}. Open it in Excel and save it "
            "again, or save it as csv."
        ]
    }


@pytest.mark.parametrize(
    "content",
    [
        XLS_CUT_AT_CTRL_Z,
        b"\xd0\xcf\x11\xe0 damaged past its first bytes",
        XLS[:1693] + b"\xff" * 16 + XLS[1709:],  # its workbook's first record
    ],
    ids=["signature cut short", "signature damaged", "a record damaged"],
)
def test_a_damaged_xls_is_refused_in_xlrds_words_without_the_bytes_it_found(content):
    """It said the bytes it found, as Python writes them: "Unsupported format, or corrupt file: Expected BOF record;
    found b'\\xd0\\xcf\\x11\\xe0 dam'", or the record's fields: "… BOF not workbook/worksheet: op=0x0809 vers=0x0600 …"."""
    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload(content, "contacts.xls"))

    assert error.value.message_dict == {
        "file": [
            "This .xls workbook could not be read: Unsupported format, or corrupt file. Open it in Excel and save it "
            "again, or save it as csv."
        ]
    }


def test_what_xlrd_notices_in_a_damaged_xls_goes_to_the_log_not_to_standard_output(caplog):
    """xlrd printed its warnings ("WARNING *** file size …") to the worker's or web server's standard output."""
    with caplog.at_level("INFO", logger="contacts.imports.readers"), pytest.raises(ValidationError):
        contact_import_create(file=upload((FIXTURES / "contacts.xls").read_bytes()[:2000], "contacts.xls"))
    assert "xlrd: WARNING *** file size (2000) not 512 + multiple of sector size (512)" in caplog.messages


def test_the_import_limits_are_read_from_the_environment(base_worker_env):
    """An operator sets the limits as every other setting, without editing code."""
    env = {**base_worker_env, "IMPORT_MAX_FILE_MB": "500", "IMPORT_MAX_ROWS": "2000000"}
    shown = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.IMPORT_MAX_FILE_MB, settings.IMPORT_MAX_ROWS)"],
        env=env, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip

    assert shown.stdout.split() == ["500.0", "2000000"]


def test_contact_import_create_refuses_a_file_over_the_size_limit(settings):
    settings.IMPORT_MAX_FILE_MB = 0.00001

    with pytest.raises(ValidationError, match=r"The file is 170 bytes, over the limit of 1e-05 MB \(10 bytes\)\."):
        contact_import_create(file=upload("Phone\n9812345678\n" * 10))


def test_contact_import_create_refuses_a_workbook_that_expands_far_beyond_its_size(tmp_path):
    """A "zip bomb": a 40 KB xlsx whose one cell holds 40 MB of text (a 300 KB one took 1.1 GB of the web server's
    memory as its columns were read, before anything said no). It is refused from the sizes its zip declares."""
    book = openpyxl.Workbook()
    book.active.append(["Phone", "Name"])
    book.active.append(["9812345678", "Asha"])
    book.save(tmp_path / "plain.xlsx")
    with zipfile.ZipFile(tmp_path / "plain.xlsx") as plain, zipfile.ZipFile(tmp_path / "bomb.xlsx", "w") as bomb:
        for item in plain.infolist():
            data = plain.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<t>Asha</t>", b"<t>" + b"A" * 40_000_000 + b"</t>")
            bomb.writestr(item.filename, data, zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.xlsx").stat().st_size < 100_000

    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload((tmp_path / "bomb.xlsx").read_bytes(), "contacts.xlsx"))

    (message,) = error.value.message_dict["file"]
    assert re.fullmatch(
        r"The workbook could not be read: its part xl/worksheets/sheet1\.xml expands from \d\d,\d{3} to 40,000,\d{3}"
        r" bytes, more than 100 times, which no spreadsheet program writes\. Open it in Excel and save it again, or"
        r" save it as csv\.",
        message,
    ), message
    assert not ContactImport.objects.exists()


def test_contact_import_create_refuses_a_file_of_one_huge_line_without_reading_it_whole():
    """A file of one 60 MB line (no text file with a row a line) was read whole to check its upload, 60 MB of the
    web server's memory for this one (800 MB for a 200 MB file of such letters), before being refused."""
    content = ("Phone,Note\n9812345678," + "ž" * 30_000_000 + "\n").encode()
    file = upload(content)
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError) as error:
            contact_import_create(file=file)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 16 * 1024 * 1024, f"{peak / 1024 / 1024:.0f} MB"
    assert error.value.message_dict["file"] == [
        "Line 2 of the file is over 1,048,576 characters: is it a text file with a row a line? A list of numbers or"
        " addresses goes one a line."
    ]


def test_contact_import_create_queues_the_run_after_commit(django_capture_on_commit_callbacks, broker_queue):
    with django_capture_on_commit_callbacks() as on_commit:
        contact_import = contact_import_create(file=upload("Phone\n9812345678\n"))

    assert broker_queue() == [], "nothing is queued before the import's row is committed"
    for callback in on_commit:
        callback()
    assert broker_queue() == [("contacts.tasks.contact_import_run_task", [contact_import.pk])]
    assert contact_import.status == Status.PENDING and contact_import.original_name == "contacts.csv"


# --- file-level failures at run time --------------------------------------------------------------


def test_contact_import_fails_a_file_over_the_row_limit_before_merging_anything(settings):
    settings.IMPORT_MAX_ROWS = 3

    contact_import = run("Phone\n" + "".join(f"98123456{n:02}\n" for n in range(5)))

    assert contact_import.status == Status.FAILED
    assert contact_import.error_message == "The file has more than 3 rows, the most one import takes: split it."
    assert not Contact.objects.exists()


@pytest.mark.parametrize("line_end", ["\r", "\r\n"])
def test_contact_import_counts_the_rows_of_a_file_whatever_its_line_ends(settings, line_end):
    """Excel for Mac's "CSV (Macintosh)" ends lines with \r alone. Counting \n only, such a file had one line: one
    over the row limit was refused only once the rows up to the limit were merged, and its progress had no total."""
    settings.IMPORT_MAX_ROWS = 3
    too_long = line_end.join(["Phone", *(f"98123456{n:02}" for n in range(5))]) + line_end

    refused = run(too_long, chunk_size=2)

    assert refused.status == Status.FAILED
    assert refused.error_message == "The file has more than 3 rows, the most one import takes: split it."
    assert not Contact.objects.exists()

    totals = []
    contact_import = run(too_long.replace("9812345603", "").replace("9812345604", ""), chunk_size=2,
                         progress=lambda contact_import: totals.append(contact_import.rows_total))  # fmt: skip
    assert contact_import.status == Status.COMPLETED and contact_import.created == 3
    assert totals == [3, 3]  # 5 lines, over the limit: so its rows were counted


def test_contact_import_fails_clearly_when_the_file_is_gone():
    contact_import = contact_import_create(file=upload("Phone\n9812345678\n"))
    contact_import.file.storage.delete(contact_import.file.name)

    contact_import = contact_import_run(import_id=contact_import.pk)

    assert contact_import.status == Status.FAILED
    assert contact_import.error_message.startswith("The file could not be read:")
    assert contact_import.finished_at is not None


def test_contact_import_fails_at_a_quote_never_closed_instead_of_losing_the_rows_after_it():
    """A stray quote opening a cell took every later line into that cell without a word: the run completed with
    eight rows read of ten, two contacts never created nor reported, and "Rao\n9812345679,Ravi,…" stored as a
    city. Now the run fails there, naming the row and what to do, and leaves the file to be put right."""
    first = "".join(f"981234567{n},Asha,Pune\n" for n in range(6))  # (the upload reads the first rows)
    content = f'Phone,Name,City\n{first}9812345678,Meera,"Rao\n9812345679,Ravi,Delhi\n9812345680,Jo,Goa\n'

    contact_import = run(content)

    assert contact_import.status == Status.FAILED
    assert contact_import.error_message == (
        'Row 8, column 3: a quote (") opens a cell that is never closed, so every line after it is read into that one'
        " cell: close the quote, or write the cell without quotes, and import the file again."
    )
    assert not Contact.objects.filter(attributes__city__contains="\n").exists()


def test_contact_import_refuses_at_upload_a_quote_never_closed_in_its_first_rows():
    with pytest.raises(ValidationError) as error:
        contact_import_create(file=upload('Phone,Name\n9812345678,"Asha\n9812345679,Ravi\n'))

    assert error.value.message_dict["file"] == [
        'Row 2, column 2: a quote (") opens a cell that is never closed, so every line after it is read into that one'
        " cell: close the quote, or write the cell without quotes, and import the file again."
    ]


def test_contact_import_still_reads_quoted_cells_on_several_lines_and_a_last_line_without_its_end():
    contact_import = run('Phone,Address\n9812345678,"12 MG Road\nPune"\n9812345679,"Goa"')

    assert contact_import.status == Status.COMPLETED and contact_import.created == 2
    assert contact("+919812345678").attributes == {"address": "12 MG Road\nPune"}


# --- progress, cancel, resume, concurrency --------------------------------------------------------


def numbers(count: int, start: int = 9_812_300_000) -> str:
    return "Phone\n" + "".join(f"{start + n}\n" for n in range(count))


def test_contact_import_progress_advances_chunk_by_chunk(mergers):
    seen = []

    def progress(contact_import):
        stored = ContactImport.objects.get(pk=contact_import.pk)  # what the admin and the API read
        seen.append((stored.status, stored.rows_read, stored.created, stored.rows_total))

    contact_import = run(numbers(10), chunk_size=3, progress=progress)

    assert seen == [("running", 3, 3, 10), ("running", 6, 6, 10), ("running", 9, 9, 10), ("running", 10, 10, 10)]
    assert contact_import.status == Status.COMPLETED and contact_import.rows_total == 10


def test_contact_import_cancel_stops_before_the_next_chunk_commits_keeping_what_was_committed(mergers):
    def cancel_after_first_chunk(contact_import):
        if contact_import.rows_read == 4:
            contact_import_cancel(import_id=contact_import.pk)

    contact_import = run(numbers(10), chunk_size=4, progress=cancel_after_first_chunk)

    assert contact_import.status == Status.CANCELLED
    assert counts(contact_import)["rows_read"] == 4 and Contact.objects.count() == 4


def test_contact_import_cancel_of_a_waiting_import_is_immediate_and_the_run_does_nothing():
    contact_import = contact_import_create(file=upload(numbers(3)))

    assert contact_import_cancel(import_id=contact_import.pk).status == Status.CANCELLED
    assert contact_import_run(import_id=contact_import.pk).status == Status.CANCELLED
    assert not Contact.objects.exists()
    with pytest.raises(ValidationError, match="too late to cancel"):
        contact_import_cancel(import_id=contact_import.pk)


class Crash(BaseException):
    """Stands for the worker dying: not an Exception, so nothing on the way catches it."""


def test_contact_import_run_after_a_crash_resumes_after_the_last_committed_chunk(mergers):
    content = "Phone,Name\n9812345678,A\nbad,B\n9812345679,C\n9812345678,D\n9812345680,E\nworse,F\n"
    contact_import = contact_import_create(file=upload(content), tags=["t"])

    def crash_after_first_chunk(stored):
        raise Crash

    with pytest.raises(Crash):
        contact_import_run(import_id=contact_import.pk, chunk_size=3, progress=crash_after_first_chunk)
    interrupted = ContactImport.objects.get(pk=contact_import.pk)
    assert interrupted.status == Status.RUNNING and interrupted.rows_read == 3

    resumed = contact_import_run(import_id=contact_import.pk, chunk_size=3)

    assert resumed.status == Status.COMPLETED
    assert counts(resumed) == {
        "rows_read": 6,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "invalid": 2,
        "duplicates": 1,
    }
    assert [line[0] for line in report(resumed)[1:]] == ["3", "5", "7"]  # the replayed chunk's errors are reported too
    # A duplicate after the crash names the row it repeats, which the run before merged.
    assert report(resumed)[2] == ["5", "Phone", "9812345678", "same phone number as row 2, which is kept"]
    assert ContactTag.objects.count() == 3


@pytest.fixture
def refused_phone():
    """A phone number the contacts table refuses (a check constraint), so that merging its chunk fails for real."""
    phone = "+919812300023"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE contacts_contact ADD CONSTRAINT test_refused CHECK (phone <> '{phone}') NOT VALID")
    yield phone
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE contacts_contact DROP CONSTRAINT IF EXISTS test_refused")


def test_contact_import_that_fails_in_a_chunk_keeps_exactly_the_chunks_before_it(mergers, refused_phone):
    """However the chunks were spread over connections, what stays is the file up to the failed chunk: a chunk
    after it, even if merged already, is rolled back, and the counters say the same as the table."""
    contact_import = run(numbers(60), chunk_size=5, tags=["t"])  # the 24th number is refused: the 5th chunk fails

    assert contact_import.status == Status.FAILED
    assert "rows merged before it are kept" in contact_import.error_message
    assert "test_refused" in contact_import.error_message
    assert counts(contact_import)["rows_read"] == contact_import.created == 20
    assert sorted(Contact.objects.values_list("phone", flat=True)) == [f"+91{9_812_300_000 + n}" for n in range(20)]
    assert ContactTag.objects.count() == 20


@contextmanager
def another_worker_holding(contact_import):
    """The import's run lock, held by another database session as a running worker would."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s::int, %s::int)", [LOCK_NAMESPACE, contact_import.pk])
        yield
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [LOCK_NAMESPACE, contact_import.pk])
    finally:
        other.close()


def test_contact_import_run_while_another_run_holds_the_import_returns_at_once():
    contact_import = contact_import_create(file=upload(numbers(2)))
    with another_worker_holding(contact_import):
        assert contact_import_run(import_id=contact_import.pk).status == Status.PENDING  # left to the other

    assert contact_import_run(import_id=contact_import.pk).status == Status.COMPLETED
    assert contact_import_run(import_id=contact_import.pk).created == 2  # finished: left as it is


def _sessions_waiting_in_a_merge() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'WITH merged AS%%'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _until(condition, seconds: float = 10) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_contacts_in_another_order_do_not_wait_on_each_other_for_ever(settings):
    """Each import merges chunks side by side and commits them in file order, a chunk holding its rows' locks until
    the chunks before it commit: a wait PostgreSQL does not see. Two imports of the same contacts in another order
    (w x | y, and y | x) could each hold what the other's earlier chunk needed: A's second chunk held y, waiting for
    A's first; B's second held x, waiting for B's first; A's first waited on x and B's first on y, for ever (two
    workers and four connections stuck). The locks of other clients (w, x, y here) steer them into it."""
    settings.IMPORT_MERGE_CONNECTIONS = 2
    w, x, y = "+919812340001", "+919812340002", "+919812340003"
    for phone in (w, x, y):
        Contact.objects.create(phone=phone)
    first = contact_import_create(file=upload(f"Phone\n{w}\n{x}\n{y}\n"))  # chunks of 2: (w, x), (y)
    second = contact_import_create(file=upload(f"Phone\n{y}\n{x}\n"))  # chunks of 1: (y), (x)
    holders = {}
    for phone in (w, x, y):
        holders[phone] = connections.create_connection("default")
        holders[phone].set_autocommit(False)
        with holders[phone].cursor() as cursor:
            cursor.execute("SELECT 1 FROM contacts_contact WHERE phone = %s FOR UPDATE", [phone])
    results = {}

    def run_import(contact_import, chunk_size):
        try:
            results[contact_import.pk] = contact_import_run(import_id=contact_import.pk, chunk_size=chunk_size)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run_import, args=(first, 2)),
        threading.Thread(target=run_import, args=(second, 1)),
    ]
    try:
        threads[0].start()
        assert _until(lambda: len(_sessions_waiting_in_a_merge()) == 2)  # A's first chunk on w, its second on y
        threads[1].start()
        _until(lambda: len(_sessions_waiting_in_a_merge()) == 4 or not threads[1].is_alive())  # B's: on y, on x
        for phone in (x, y):  # x to B's second chunk; y to A's second, which came first
            holders[phone].commit()
        _until(lambda: len(_sessions_waiting_in_a_merge()) <= 1)
        holders[w].commit()  # A's first chunk goes on: to x
        for thread in threads:
            thread.join(15)
        stuck = any(thread.is_alive() for thread in threads)
    finally:
        with connection.cursor() as cursor:  # (let a stuck test end)
            for pid in _sessions_waiting_in_a_merge():
                cursor.execute("SELECT pg_cancel_backend(%s)", [pid])
        for thread in threads:
            thread.join(15)
        for holder in holders.values():
            holder.close()

    assert not stuck, "the two imports waited on each other"
    if results[second.pk].status == Status.PENDING:  # it waited for the first: its task looks again later
        results[second.pk] = contact_import_run(import_id=second.pk, chunk_size=1)
    assert [results[first.pk].status, results[second.pk].status] == [Status.COMPLETED, Status.COMPLETED]


def test_contact_import_task_looks_again_later_while_another_worker_holds_the_import(monkeypatch):
    retries = []
    monkeypatch.setattr(contact_import_run_task, "retry", lambda **kwargs: retries.append(kwargs) or Retry())
    contact_import = contact_import_create(file=upload(numbers(2)))
    with another_worker_holding(contact_import), pytest.raises(Retry):
        contact_import_run_task.run(contact_import.pk)

    contact_import_run_task.run(contact_import.pk)

    assert retries == [{"countdown": 60}]
    assert ContactImport.objects.get().status == Status.COMPLETED


# --- memory ---------------------------------------------------------------------------------------


def test_contact_import_memory_stays_bounded_on_a_200k_row_file(tmp_path, settings, mergers):
    """Rows are never all in memory: the peak (~20 MB over the baseline) stays far below the ~115 MB that the
    file's 200,000 rows take as lists of strings."""
    settings.IMPORT_CHUNK_SIZE = 20_000
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write("Phone,First name,Last name,Email,City,Plan,Note\n")
        for n in range(200_000):
            fh.write(f"+9198{n:08},First {n},Last {n},person{n}@example.com,City {n % 50},plan {n % 7},note {n}\n")
    with open(path, "rb") as fh:
        contact_import = contact_import_create(file=SimpleUploadedFile("big.csv", fh.read()))
    process, peak, done = psutil.Process(), [0], threading.Event()
    baseline = process.memory_info().rss

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss - baseline)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        contact_import = contact_import_run(import_id=contact_import.pk)
    finally:
        done.set()
        sampler.join()

    assert contact_import.status == Status.COMPLETED and contact_import.created == 200_000
    assert peak[0] < 50 * 1024 * 1024, f"peak RSS grew by {peak[0] / 1024 / 1024:.0f} MB"
