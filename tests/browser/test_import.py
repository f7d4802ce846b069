"""Importing contacts in the browser: upload a file with bad rows, follow its progress bar, download the error
report and find the imported contacts with their tag."""

import csv
import io

import pytest
from playwright.sync_api import expect

from contacts.models import Contact

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    ("Mobile", "First name", "City"),
    ("9812345601", "Asha", "Pune"),
    ("+91 98123 45602", "Ravi", "Delhi"),
    ("not a number", "Bad", "Nowhere"),
    ("9812345603", "Meera", "Chennai"),
    ("12", "Short", "Nowhere"),
]


def test_upload_an_import_with_bad_rows_and_download_its_error_report(stack, page, steps, tmp_path):
    upload = tmp_path / "customers.csv"
    with upload.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(ROWS)

    with steps("the contact list links to the import page"):
        page.goto("/admin/contacts/contact/")
        page.click("text=Import a file")
        expect(page.locator("h1")).to_have_text("Import a file")

    with steps("upload the file"):
        page.set_input_files("#id_file", str(upload))
        page.select_option("#id_kind", "contacts")
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

    with steps("the imported contacts carry the tag"):
        assert set(Contact.objects.filter(tags__name="imported").values_list("first_name", flat=True)) == {
            "Asha", "Ravi", "Meera",
        }  # fmt: skip
        page.goto("/admin/contacts/contact/?q=9812345601")
        expect(page.locator("#result_list")).to_contain_text("Asha")
        expect(page.locator("#result_list")).to_contain_text("imported")

    assert not page.js_errors, page.js_errors
