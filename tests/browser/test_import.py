"""Importing contacts in the browser: upload a file with bad rows, map its columns in the table the page shows,
follow the import's progress bar, download the error report, find the imported contacts by their tag, and import
unsubscribers."""

import csv
import io

import openpyxl
import pytest
from playwright.sync_api import expect

from contacts.models import Contact, Tag, Unsubscriber
from tests.browser.conftest import assert_list_fits, pick

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    ("Contact", "Customer", "City", "Notes"),
    ("9812345601", "Asha", "Pune", "called twice"),
    ("+91 98123 45602", "Ravi", "Delhi", ""),
    ("not a number", "Bad", "Nowhere", ""),
    ("9812345603", "Meera", "Chennai", "VIP?"),
    ("12", "Short", "Nowhere", ""),
]


def test_upload_map_the_columns_follow_the_import_and_find_its_contacts(stack, page, steps, tmp_path):
    upload = tmp_path / "customers.csv"
    with upload.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(ROWS)
    stop_list = tmp_path / "stop.txt"
    stop_list.write_text("9812345602\nnonsense\n")
    Tag.objects.bulk_create([Tag(name="customers"), *(Tag(name=f"other-{n}") for n in range(50))])

    with steps("the contact list links to the import page"):
        page.goto("/admin/contacts/contact/")
        page.click("text=Import a file")
        expect(page.locator("h1")).to_have_text("Import a file")

    with steps("the tags' label stands left of its search box, as every other label"):
        label = page.locator(".field-tags label[for=id_tags]").bounding_box()
        box = page.locator(".field-tags .select2-container").bounding_box()
        assert label["x"] < box["x"], (label, box)

    with steps("choose the file: the page shows what each column becomes, and that none is the phone"):
        expect(page.locator(".field-new_tags")).to_be_visible()
        page.set_input_files("#id_file", str(upload))
        columns = page.locator("#import-columns")
        expect(columns.locator("tbody tr")).to_have_count(4)
        expect(columns.get_by_label("What column Contact becomes")).to_have_value("attributes.contact")
        expect(columns.get_by_label("What column Customer becomes")).to_have_value("attributes.customer")
        expect(columns.locator("tbody tr", has_text="Customer")).to_contain_text("Asha")
        expect(columns.locator("[data-columns=error]")).to_contain_text("No phone column")

    with steps("map the columns: the phone, the customer's name, no notes"):
        columns.get_by_label("What column Contact becomes").select_option(label="phone")
        expect(columns.locator("[data-columns=error]")).to_be_hidden()
        columns.get_by_label("What column Customer becomes").select_option(label="first name")
        columns.get_by_label("What column Notes becomes").select_option(label="left out")
        expect(page.locator("#id_mapping")).to_have_value(
            '{"Contact":"phone","Customer":"first_name","City":"attributes.city","Notes":""}'
        )

    with steps("a mapping that cannot be is said at once"):
        columns.get_by_label("What column City becomes").select_option(label="phone")
        expect(columns.locator("[data-columns=error]")).to_contain_text(
            "Columns 'Contact' and 'City' are both mapped to phone."
        )
        columns.get_by_label("What column City becomes").select_option(label="attribute {{city}}")
        expect(columns.locator("[data-columns=error]")).to_be_hidden()

    with steps("upload the file, with a tag found by its search box and a new one"):
        pick(page, ".field-tags", "customers")
        page.fill("#id_new_tags", "imported")
        page.click("input[type=submit][value='Upload and import']")
        expect(page.locator(".messagelist")).to_contain_text("is queued")

    with steps("the progress bar reaches the end"):
        panel = page.locator("#import-progress")
        expect(panel.locator("[data-field=status_display]")).to_have_text("completed", timeout=30_000)
        expect(panel.locator("[data-field=percent]")).to_have_text("100%")
        expect(panel.locator("[data-field=created]")).to_have_text("3")
        expect(panel.locator("[data-field=invalid]")).to_have_text("2")

    with steps("download the error report"):
        with page.expect_download() as download:
            panel.locator("[data-show=has_error_report] a").click()
        report = download.value.path().read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(report)))
        assert len(rows) == 3, report  # a header and the two bad rows
        assert "not a number" in report and "12" in report

    with steps("the import's tag leads to its contacts"):
        page.click(".field-tag_links a:text-is('imported')")
        expect(page.locator("#result_list tbody tr")).to_have_count(3)
        expect(page.locator("#result_list")).to_contain_text("Asha")
        assert set(Contact.objects.filter(tags__name="imported").values_list("first_name", flat=True)) == {
            "Asha", "Ravi", "Meera",
        }  # fmt: skip
        assert Contact.objects.get(first_name="Asha").attributes == {"city": "Pune"}
        assert Contact.objects.filter(tags__name="customers").count() == 3

    with steps("the tag list counts them and links to them too"):
        page.goto("/admin/contacts/tag/")
        page.click("#result_list td.field-contact_count a")
        expect(page.locator("#result_list tbody tr")).to_have_count(3)

    with steps("import unsubscribers"):
        page.goto("/admin/contacts/contactimport/add/")
        page.set_input_files("#id_file", str(stop_list))
        page.fill("#id_new_tags", "typed before choosing the kind")
        page.select_option("#id_kind", "unsubscribers")
        expect(page.locator(".field-new_tags")).to_be_hidden()  # suppressions take no tags
        expect(page.locator(".field-tags")).to_be_hidden()
        expect(page.locator(".field-mode")).to_be_hidden()  # an opt-out is only ever added: no mode, none sent
        # the mapping's help is the opt-outs' (it spoke of contacts' attributes whatever the kind)
        expect(page.locator(".field-mapping .help[data-import-kinds=unsubscribers]")).to_be_visible()
        expect(page.locator(".field-mapping .help[data-import-kinds=contacts]")).to_be_hidden()
        expect(page.locator("#import-columns").get_by_label("What column address becomes")).to_have_value("address")
        page.click("input[type=submit][value='Upload and import']")
        panel = page.locator("#import-progress")
        expect(panel.locator("[data-field=status_display]")).to_have_text("completed", timeout=30_000)
        expect(panel.locator("[data-field=created]")).to_have_text("1")
        expect(panel.locator("[data-field=invalid]")).to_have_text("1")
        assert list(Unsubscriber.objects.values_list("address", "scope")) == [("+919812345602", "all")]

    assert not page.js_errors, page.js_errors


def test_the_column_table_reads_the_head_of_a_large_utf16_file_with_indian_names(stack, page, tmp_path):
    """Of a text file over 256 KB the page sends its first 64 KB, cut after a line feed. In UTF-16 (Excel's "Unicode
    text") a line feed is 0A 00, but a Gujarati or Gurmukhi letter (U+0A00–U+0AFF) ends in 0A too: the page cut
    inside one, and the table said the file could not be read, for a file the upload reads."""
    rows = ["Mobile,Name", *(f"98{n:08d},નરેન્દ્ર {'Patel' * 4}" for n in range(3200))]
    upload = tmp_path / "unicode.csv"
    upload.write_bytes(b"\xff\xfe" + "\r\n".join(rows).encode("utf-16-le"))
    assert upload.stat().st_size > 4 * 64 * 1024

    page.goto("/admin/contacts/contactimport/add/")
    page.set_input_files("#id_file", str(upload))

    columns = page.locator("#import-columns")
    expect(columns.locator("tbody tr")).to_have_count(2)
    expect(columns.get_by_label("What column Mobile becomes")).to_have_value("phone")
    expect(columns.get_by_text("નરેન્દ્ર PatelPatel", exact=False)).to_be_visible()
    expect(columns.locator("[data-columns=error]")).to_be_hidden()
    assert not page.js_errors, page.js_errors


def test_a_workbook_is_sent_once_for_its_columns_and_its_import(stack, page, steps, tmp_path):
    """The page sent a workbook whole to read its columns, whole again at each mapping choice, and whole once more
    with the form: three times the wait for a 20 MB workbook. The server now keeps it after the first time."""
    book = openpyxl.Workbook()
    for row in [("Contact", "Customer"), ("9812345601", "Asha"), ("9812345602", "Ravi")]:
        book.active.append(row)
    upload = tmp_path / "customers.xlsx"
    book.save(upload)
    content = upload.read_bytes()
    posted = []
    page.on("request", lambda request: posted.append(request) if request.method == "POST" else None)

    with steps("choose the workbook: its columns show"):
        page.goto("/admin/contacts/contactimport/add/")
        page.set_input_files("#id_file", str(upload))
        columns = page.locator("#import-columns")
        expect(columns.get_by_label("What column Contact becomes")).to_have_value("attributes.contact")

    with steps("map its columns: checked again without sending the workbook"):
        columns.get_by_label("What column Contact becomes").select_option(label="phone")
        expect(columns.locator("[data-columns=error]")).to_be_hidden()
        columns.get_by_label("What column Customer becomes").select_option(label="first name")
        expect(page.locator("#id_mapping")).to_have_value('{"Contact":"phone","Customer":"first_name"}')

    with steps("a form sent back with an error keeps the workbook: no need to choose it again"):
        page.fill("#id_default_region", "XX")
        page.click("input[type=submit][value='Upload and import']")
        expect(page.locator(".field-default_region .errorlist")).to_contain_text("Unknown country 'XX'")
        expect(page.locator("[data-staged-note]")).to_contain_text("The file chosen before is kept")
        expect(columns.get_by_label("What column Contact becomes")).to_have_value("phone")  # read from the kept one

    with steps("upload it: the import runs from the workbook kept"):
        page.fill("#id_default_region", "IN")
        page.click("input[type=submit][value='Upload and import']")
        panel = page.locator("#import-progress")
        expect(panel.locator("[data-field=status_display]")).to_have_text("completed", timeout=30_000)
        expect(panel.locator("[data-field=created]")).to_have_text("2")
        assert sorted(Contact.objects.values_list("first_name", flat=True)) == ["Asha", "Ravi"]

    # Chromium tells Playwright the size of a body holding a file as 0: after the first question, each request
    # (the other questions, the upload) must be one it can measure, and smaller than the workbook.
    sent = [(r.url.rsplit("/", 2)[-2], r.sizes()["requestBodySize"]) for r in posted]
    assert [name for name, _ in sent] == ["columns", "columns", "columns", "add", "columns", "add"], sent
    assert all(0 < size < len(content) for _, size in sent[1:]), (sent, len(content))
    assert not page.js_errors, page.js_errors


def test_the_imports_list_shows_every_column_in_a_1400_pixel_window(web_server, page, steps, staff_user):
    """With the navigation open, the list cut its "Duplicates" heading and needed a sideways scroll for who made an
    import and when: five columns of counts, one for each."""
    from contacts.models import ContactImport

    counts = {"created": 120_000, "updated": 3_400, "unchanged": 25_000, "invalid": 1_212, "duplicates": 388}
    for name, kind in [("diwali-customers-2026-final.csv", "contacts"), ("stop-list.xlsx", "unsubscribers"),
                       ("dlt-export.csv", "dlt_templates")]:  # fmt: skip
        ContactImport.objects.create(
            kind=kind, file=f"imports/{name}", original_name=name, status=ContactImport.Status.COMPLETED,
            rows_total=sum(counts.values()), rows_read=sum(counts.values()), created_by=staff_user, **counts,
        )  # fmt: skip

    with steps("the imports list at 1400 px"):
        page.goto("/admin/contacts/contactimport/")
        expect(page.locator("#result_list tbody tr")).to_have_count(3)
        assert_list_fits(page, "td.field-created_at")
        expect(page.locator("#result_list td.field-rows").first).to_have_text(
            "120,000\u00a0created, 3,400\u00a0updated, 25,000\u00a0unchanged, 1,212\u00a0invalid, 388\u00a0duplicates"
        )

    assert not page.js_errors, page.js_errors
