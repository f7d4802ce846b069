"""DLT templates imported from the DLT portal's csv export, through the contacts import machinery."""

import csv
import io
import re
from html import unescape

import openpyxl
import pytest

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.imports import contact_import_cancel, contact_import_create, contact_import_run
from contacts.imports.readers import ROUNDED_NUMBER_REASON
from contacts.models import ContactImport, Tag
from providers.dlt_import import NO_ACCOUNT
from providers.models import DltTemplate, ProviderAccount, Sender
from providers.services import dlt_templates_link_headers, sender_create, sender_update
from tests.factories import UserFactory, admin_client_for, api_client_for
from tests.import_reports import error_report_rows
from tests.providers.test_admin import account_form

pytestmark = pytest.mark.django_db
KIND = ContactImport.Kind.DLT_TEMPLATES
EXPORT = [
    ["Template ID", "Template Name", "Template Type", "Header", "Template Content", "Status"],
    ["1107161234567890123", "OTP", "Service Implicit", "HERALD", "Your OTP is {#var#}. Do not share it.", "Approved"],
    ["1107161234567890124", "", "Transactional", "herald, HRLDOT", "Order {#var#} shipped.", ""],
    ["1107161234567890125", "Promo", "Promotional", "NOSUCH", "Sale! {#var#} off", "Approved"],
    ["", "No id", "Transactional", "HERALD", "Hi", ""],
    ["1107161234567890126", "Bad type", "Marketing", "HERALD", "Hi", ""],
    ["1107161234567890127", "Broken", "T", "HERALD", "Hi {#var", ""],
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def account():
    account = ProviderAccount.objects.create(kind="mobtexting", name="MOBtexting")
    other = ProviderAccount.objects.create(kind="octopush", name="Octopush")
    Sender.objects.create(account=account, name="HERALD")
    Sender.objects.create(account=account, name="HRLDOT")
    Sender.objects.create(account=other, name="HERALD")
    return account


def export(rows) -> SimpleUploadedFile:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return SimpleUploadedFile("dlt-export.csv", out.getvalue().encode())


def run(rows, **kwargs) -> ContactImport:
    contact_import = contact_import_create(file=export(rows), kind=KIND, **kwargs)
    return contact_import_run(import_id=contact_import.pk)


def report(contact_import):
    return error_report_rows(contact_import)[1:]


def test_dlt_import_creates_templates_and_links_the_accounts_senders(account):
    contact_import = run(EXPORT, options={"account_id": account.pk})

    assert contact_import.status == ContactImport.Status.COMPLETED, contact_import.error_message
    assert (contact_import.created, contact_import.invalid) == (3, 3)
    otp = DltTemplate.objects.get(dlt_template_id="1107161234567890123")
    assert (otp.name, otp.type, otp.status, otp.account, otp.is_english) == ("OTP", "SI", "approved", account, True)
    assert [s.name for s in otp.senders.all()] == ["HERALD"]  # not the other account's HERALD
    order = DltTemplate.objects.get(dlt_template_id="1107161234567890124")
    assert order.name == "1107161234567890124" and order.type == "T"
    assert sorted(s.name for s in order.senders.all()) == ["HERALD", "HRLDOT"]
    assert not DltTemplate.objects.get(dlt_template_id="1107161234567890125").senders.exists()
    assert [row[:2] + row[3:] for row in report(contact_import)] == [
        ["5", "Template ID", "no template id"],
        ["6", "Template Type", "not a template type (transactional, promotional, SI or SE)"],
        [
            "7",
            "Template Content",
            "Unclosed or malformed variable near 'Hi {#var': write variables as {#var#} or {{name}}",
        ],
    ]


def test_dlt_import_updates_changed_templates_and_keeps_what_the_file_leaves_empty(account):
    run(EXPORT[:3], options={"account_id": account.pk})
    DltTemplate.objects.filter(dlt_template_id="1107161234567890124").update(name="Shipping")
    changed = [EXPORT[0], EXPORT[1], [*EXPORT[2][:4], "Order {#var#} is on its way.", ""]]

    contact_import = run(changed, options={"account_id": account.pk})

    assert (contact_import.created, contact_import.updated, contact_import.unchanged) == (0, 1, 1)
    order = DltTemplate.objects.get(dlt_template_id="1107161234567890124")
    assert (order.name, order.body, order.account) == ("Shipping", "Order {#var#} is on its way.", account)


def test_dlt_import_create_only_leaves_existing_templates(account):
    run(EXPORT[:2], options={"account_id": account.pk})
    changed = [EXPORT[0], [*EXPORT[1][:4], "Another body {#var#}", ""]]

    contact_import = run(changed, mode=ContactImport.Mode.CREATE_ONLY, options={"account_id": account.pk})

    assert (contact_import.created, contact_import.unchanged) == (0, 1)
    assert DltTemplate.objects.get().body == "Your OTP is {#var#}. Do not share it."


def test_dlt_import_asks_for_the_account_whose_senders_the_headers_name(account):
    """Without an account, a header was linked to the senders of that name on every account (an Octopush "Herald"
    too), which the template is not registered for: the import now asks for the account, naming the option."""
    with pytest.raises(ValidationError) as refused:
        contact_import_create(file=export(EXPORT[:2]), kind=KIND)

    assert refused.value.message_dict == {"options": [NO_ACCOUNT]}
    assert not ContactImport.objects.exists() and not DltTemplate.objects.exists()


def test_dlt_import_links_an_existing_template_without_an_account_to_the_chosen_accounts_senders_only(account):
    """A template left without an account (an import before the account was asked for) gets the headers of the
    chosen account's senders, in create only too; one of another account keeps its own senders."""
    DltTemplate.objects.create(dlt_template_id="1107161234567890123", name="OTP", body="Your OTP is {#var#}.")
    theirs = DltTemplate.objects.create(
        dlt_template_id="1107161234567890124", name="Order", body="Order {#var#} shipped.",
        account=ProviderAccount.objects.get(name="Octopush"),
    )  # fmt: skip

    run(EXPORT[:3], mode=ContactImport.Mode.CREATE_ONLY, options={"account_id": account.pk})

    otp = DltTemplate.objects.get(dlt_template_id="1107161234567890123")
    assert [(s.name, s.account) for s in otp.senders.all()] == [("HERALD", account)]
    assert not theirs.senders.exists()


def test_dlt_import_marks_non_latin_bodies(account):
    run(
        [EXPORT[0], ["1107161234567890199", "Hindi", "T", "HERALD", "आपका OTP {#var#} है", ""]],
        options={"account_id": account.pk},
    )

    assert DltTemplate.objects.get().is_english is False


def test_dlt_import_refuses_an_unknown_account():
    with pytest.raises(ValidationError, match="No provider account with id 999"):
        contact_import_create(file=export(EXPORT), kind=KIND, options={"account_id": 999})


def test_dlt_import_refuses_tags_rather_than_creating_them_for_nothing(account):
    with pytest.raises(ValidationError, match="applies no tags") as raised:
        contact_import_create(file=export(EXPORT), kind=KIND, tags=["promo"], options={"account_id": account.pk})

    assert "tags" in raised.value.message_dict
    assert not Tag.objects.exists() and not ContactImport.objects.exists()


def test_dlt_import_needs_the_body_column(account):
    with pytest.raises(ValidationError, match="No body column"):
        file = export([["Template ID", "Type"], ["1", "T"]])
        contact_import_create(file=file, kind=KIND, options={"account_id": account.pk})


def test_dlt_ids_a_spreadsheet_stored_as_numbers_are_refused_not_rounded(account, tmp_path):
    """Excel keeps 15 digits of a number: 19-digit template ids stored as numbers have lost their last digits, and
    two templates would become one with a wrong id. The rows are refused, saying what to do."""
    book = openpyxl.Workbook()
    book.active.append(["Template ID", "Template Type", "Header", "Template Content"])
    book.active.append([1107161234567890123.0, "Transactional", "HERALD", "Order {#var#} shipped."])
    book.active.append([1107161234567890124.0, "Transactional", "HERALD", "Order {#var#} delivered."])
    book.active.append(["1107161234567890125", "Transactional", "HERALD", "Order {#var#} returned."])
    book.save(tmp_path / "dlt.xlsx")
    upload = SimpleUploadedFile("dlt.xlsx", (tmp_path / "dlt.xlsx").read_bytes())

    options = {"account_id": account.pk}
    contact_import = contact_import_run(import_id=contact_import_create(file=upload, kind=KIND, options=options).pk)

    assert (contact_import.created, contact_import.invalid, contact_import.duplicates) == (1, 2, 0)
    assert list(DltTemplate.objects.values_list("dlt_template_id", flat=True)) == ["1107161234567890125"]
    assert report(contact_import) == [
        ["2", "Template ID", "1.10716123456789E+18", ROUNDED_NUMBER_REASON],
        ["3", "Template ID", "1.10716123456789E+18", ROUNDED_NUMBER_REASON],
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])  # (Excel's "Web Page" saves either)
def test_dlt_import_reads_a_portals_excel_export_that_is_a_web_page(account, encoding):
    """DLT portals' "Excel" download is a web page holding a table, named .xls, which Excel opens as a sheet. It was
    read as csv, a line of markup a row, and refused: "No template_id column … Columns: '<html …'"."""
    page = """<html xmlns:x="urn:schemas-microsoft-com:office:excel">
    <head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">
    <style>td { mso-number-format: "\\@"; }</style></head>
    <body><table border="1">
      <thead><tr><th>Template ID</th><th>Template Name</th><th>Template Type</th><th>Header</th>
        <th>Template Content</th><th>Status</th></tr></thead>
      <tbody>
        <tr><td>1107161234567890123</td><td>OTP &amp; login</td><td>Service Implicit</td><td>HERALD</td>
          <td>Dear {#var#},<br>your OTP is {#var#}.&nbsp;Do not share it.</td><td>Approved</td></tr>
        <tr><td>1107161234567890124<td>Orders<td>Transactional<td>HRLDOT, HERALD<td>Order {#var#}
          shipped – Herald<td>Approved
      </tbody></table></body></html>"""
    upload = SimpleUploadedFile("Template_Report.xls", page.encode(encoding))

    contact_import = contact_import_create(file=upload, kind=KIND, options={"account_id": account.pk})
    contact_import = contact_import_run(import_id=contact_import.pk)

    assert contact_import.status == ContactImport.Status.COMPLETED, contact_import.error_message
    assert (contact_import.file_format, contact_import.created, contact_import.invalid) == ("html", 2, 0)
    otp = DltTemplate.objects.get(dlt_template_id="1107161234567890123")
    assert (otp.name, otp.type, otp.body) == (
        "OTP & login",
        "SI",
        "Dear {#var#},\nyour OTP is {#var#}. Do not share it.",
    )
    order = DltTemplate.objects.get(dlt_template_id="1107161234567890124")
    assert (order.type, order.body) == ("T", "Order {#var#} shipped – Herald")
    assert sorted(sender.name for sender in order.senders.all()) == ["HERALD", "HRLDOT"]


def test_dlt_import_reads_ids_written_for_excel_as_text_formulas(account):
    """A csv made for Excel writes a long id ="1107161234567890123" so that Excel keeps its 19 digits (it shows the
    text between the quotes). Such rows were refused as "not a DLT template id"."""
    content = (
        "Template ID,Template Type,Header,Template Content\r\n"
        '="1107161234567890123",="Transactional",="HERALD","Order {#var#} shipped, ""Herald"""\r\n'
        '"=""1107161234567890124""",Service Explicit,HRLDOT,"=""Offer"" {#var#}"\r\n'
    )
    upload = SimpleUploadedFile("templates.csv", content.encode())
    options = {"account_id": account.pk}

    contact_import = contact_import_run(import_id=contact_import_create(file=upload, kind=KIND, options=options).pk)

    assert (contact_import.created, contact_import.invalid) == (2, 0)
    first = DltTemplate.objects.get(dlt_template_id="1107161234567890123")
    assert (first.type, first.body) == ("T", 'Order {#var#} shipped, "Herald"')
    assert [sender.name for sender in first.senders.all()] == ["HERALD"]
    second = DltTemplate.objects.get(dlt_template_id="1107161234567890124")
    assert second.body == '="Offer" {#var#}'  # not a text formula: a text that happens to start so, kept


def test_a_template_listed_once_per_header_is_linked_to_every_header(account, settings, mergers):
    """Some portal exports give a template a row per header. The first row gives the template; each later row is
    counted a duplicate, and its headers are linked too, from whichever chunk it is in. A later row may leave the
    body and the type blank."""
    settings.IMPORT_CHUNK_SIZE = 2  # the later rows fall in other chunks than the template's first row
    Sender.objects.create(account=account, name="HRLDIN")
    otp = EXPORT[1]
    rows = [
        EXPORT[0],
        otp,
        [otp[0], "", "", "HRLDOT", "", ""],
        ["1107161234567890124", "", "T", "", "Order {#var#} shipped.", ""],
        [otp[0], otp[1], otp[2], "hrldin, NOSUCH", otp[4], "Approved"],
        [otp[0], "", "", "", "", ""],  # nothing to add: left out, and said so
    ]

    contact_import = run(rows, options={"account_id": account.pk})

    assert (contact_import.created, contact_import.duplicates, contact_import.invalid) == (2, 3, 0)
    # The rows that add headers are used, not reported; the one that adds nothing is.
    assert report(contact_import) == [["6", "Template ID", otp[0], "same template id as row 2, which is kept"]]
    template = DltTemplate.objects.get(dlt_template_id=otp[0])
    assert template.body == otp[4]  # the first row's
    assert sorted(s.name for s in template.senders.all()) == ["HERALD", "HRLDIN", "HRLDOT"]
    assert template.headers == ["HERALD", "HRLDIN", "HRLDOT", "NOSUCH"]  # each row's, from every chunk
    assert not DltTemplate.objects.get(dlt_template_id="1107161234567890124").senders.exists()

    again = run(rows, options={"account_id": account.pk})  # a re-run changes nothing

    assert (again.created, again.updated, again.unchanged, again.duplicates) == (0, 0, 2, 3)
    assert template.senders.count() == 3


def test_a_later_row_of_a_template_that_says_something_else_is_reported_and_the_first_row_kept(account):
    """The same template id with another body or type is a mistake in the file: the row is reported (its headers
    are not linked to a template that says something else), never taken silently. The same type written another
    way is the same type."""
    otp = EXPORT[1]
    rows = [
        EXPORT[0],
        ["1107161234567890129", "", "", "HERALD", "", ""],  # before its template's row: nothing to add headers to
        otp,
        [otp[0], "", "Service Implicit", "HRLDOT", "Your OTP is {#var#}. Share it.", ""],
        [otp[0], "", "Transactional", "HRLDOT", otp[4], ""],
        [otp[0], "", "Marketing", "HRLDOT", "", ""],
        [otp[0], "", "SI", "HERALD", otp[4], ""],
        ["1107161234567890129", "", "T", "HERALD", "Hi {#var#}", ""],
    ]

    contact_import = run(rows, options={"account_id": account.pk})

    assert [row[:2] + row[3:] for row in report(contact_import)] == [
        ["2", "Template Content", "The template body cannot be empty"],
        ["4", "Template Content", f"template {otp[0]} came on an earlier row with another body, which is kept"],
        ["5", "Template Type", f"template {otp[0]} came on an earlier row with another type, which is kept"],
        ["6", "Template Type", "not a template type (transactional, promotional, SI or SE)"],
    ]
    assert (contact_import.created, contact_import.duplicates, contact_import.invalid) == (2, 1, 4)
    template = DltTemplate.objects.get(dlt_template_id=otp[0])
    assert (template.body, template.type) == (otp[4], "SI")
    assert list(template.senders.values_list("name", flat=True)) == ["HERALD"]


@pytest.mark.parametrize(
    ("written", "status"),
    [
        ("Active", "approved"),
        ("Pending for approval", "pending"),
        ("In-Review", "pending"),
        ("Blacklisted", "rejected"),
        ("Temporarily Blocked", "rejected"),
        ("Expired", "rejected"),
    ],
)
def test_dlt_import_reads_the_status_words_of_the_operators_portals(account, written, status):
    contact_import = run([EXPORT[0], [*EXPORT[1][:5], written]], options={"account_id": account.pk})

    assert contact_import.invalid == 0
    assert DltTemplate.objects.get().status == status


def test_dlt_import_reports_a_status_it_does_not_know_and_keeps_the_other_rows(account):
    contact_import = run([EXPORT[0], [*EXPORT[1][:5], "Half-approved"], EXPORT[2]], options={"account_id": account.pk})

    assert list(DltTemplate.objects.values_list("dlt_template_id", flat=True)) == ["1107161234567890124"]
    assert [row[:2] + row[3:] for row in report(contact_import)] == [
        ["2", "Status", "not a status (approved, pending or rejected)"]
    ]


def test_the_headers_of_a_chunk_that_committed_stay_linked_when_the_import_is_then_cancelled(account, mergers):
    """What is committed is the file up to some chunk, each row of it whole: the later header rows of a template
    are linked in their own chunk's transaction, not at the end of the file (which a cancel never reaches)."""
    otp, order = EXPORT[1], EXPORT[2]
    rows = [EXPORT[0], otp, [*otp[:3], "HRLDOT", *otp[4:]], order, order, order, order]

    def cancel_after_first_chunk(contact_import):
        if contact_import.rows_read == 2:
            contact_import_cancel(import_id=contact_import.pk)

    contact_import = contact_import_run(
        import_id=contact_import_create(file=export(rows), kind=KIND, options={"account_id": account.pk}).pk,
        chunk_size=2,
        progress=cancel_after_first_chunk,
    )

    assert (contact_import.status, contact_import.rows_read) == (ContactImport.Status.CANCELLED, 2)
    template = DltTemplate.objects.get(dlt_template_id=otp[0])
    assert sorted(template.senders.values_list("name", flat=True)) == ["HERALD", "HRLDOT"]


class TestHeadersNamingNoSenderYet:
    """The portal's export often comes before the senders are added: a header that named no sender of the account was
    linked to nothing and forgotten (the README said to import the file again). The import records each template's
    headers, and a sender of one of those names added to the account later is linked to it, however it is added."""

    @pytest.fixture
    def imported(self, account):
        rows = [EXPORT[0], EXPORT[1], ["1107161234567890128", "Offer", "P", "OFFERS, HERALD", "Sale {#var#}", ""]]
        assert run(rows, options={"account_id": account.pk}).status == ContactImport.Status.COMPLETED
        return DltTemplate.objects.get(dlt_template_id="1107161234567890128")

    def test_the_import_records_the_headers_and_links_the_senders_there_are(self, imported):
        assert imported.headers == ["HERALD", "OFFERS"]
        assert [s.name for s in imported.senders.all()] == ["HERALD"]

    def test_a_sender_added_through_the_api_is_linked(self, account, imported):
        api = api_client_for(UserFactory(superuser=True))
        response = api.post(
            "/api/v1/senders/", {"account": account.pk, "name": "Offers", "channel": "sms"}, format="json"
        )
        assert response.status_code == 201, response.content
        assert sorted(s.name for s in imported.senders.all()) == ["HERALD", "Offers"]
        assert api.get(f"/api/v1/templates/{imported.pk}/").json()["headers"] == ["HERALD", "OFFERS"]

    def test_a_sender_added_on_its_admin_page_is_linked_and_staff_are_told(self, account, imported):
        client = admin_client_for()
        response = client.post(
            reverse("admin:providers_sender_add"),
            {"account": account.pk, "name": "OFFERS", "channel": "sms", "status": "approved"},
            follow=True,
        )
        assert response.status_code == 200
        assert sorted(s.name for s in imported.senders.all()) == ["HERALD", "OFFERS"]
        said = [str(message) for message in response.context["messages"]]
        assert "Linked to 1 DLT template(s) whose headers, as imported, name OFFERS." in said
        page = client.get(reverse("admin:providers_dlttemplate_change", args=[imported.pk])).content.decode()
        assert "HERALD, OFFERS" in page and "a sender of one of these names added to its account later" in page

    def test_a_sender_added_in_its_accounts_page_is_linked(self, account, imported):
        client = admin_client_for()
        row = {"name": "OFFERS", "channel": "sms", "status": "approved", "account": account.pk}
        data = account_form(name="MOBtexting", currency="INR", **{
            "senders-TOTAL_FORMS": "1", "senders-INITIAL_FORMS": "0",
            **{f"senders-0-{field}": value for field, value in row.items()},
        })  # fmt: skip
        del data["kind"]
        response = client.post(reverse("admin:providers_provideraccount_change", args=[account.pk]), data)
        assert response.status_code == 302, response.context["adminform"].form.errors or [
            f.errors for f in response.context["inline_admin_formsets"][0].formset
        ]
        assert sorted(s.name for s in imported.senders.all()) == ["HERALD", "OFFERS"]

    def test_only_a_sender_of_the_templates_account_and_for_sms_is_linked(self, account, imported):
        other = ProviderAccount.objects.get(name="Octopush")
        sender_create(account=other, name="OFFERS", channel="sms")
        whatsapp = Sender.objects.create(account=account, name="OFFERS", channel="whatsapp")
        assert dlt_templates_link_headers(sender_ids=[whatsapp.pk]) == 0
        assert [s.name for s in imported.senders.all()] == ["HERALD"]

    def test_a_sender_changed_is_not_linked_again_after_staff_took_the_link_off(self, account, imported):
        offers = sender_create(account=account, name="OFFERS")
        imported.senders.remove(offers)
        sender_update(sender=offers, status="approved")
        assert [s.name for s in imported.senders.all()] == ["HERALD"]


class TestDltTypeRule:
    """DLT's type rule (a promotional, service P, sender carries promotional templates only; a promotional template
    goes out through one only) was not applied by the import: a transactional template was linked to the P sender its
    header named, whose template page then refused a plain Save, and the composer offered the pair that the launch's
    pre-flight refused. The template is imported; the link is refused and the row reported in the page's words."""

    PROMO_SENDER = "756070"
    REFUSAL = (
        "756070 is a promotional (service P) sender: it carries promotional templates only, not transactional ones"
        " (the template is imported, not linked to this sender)"
    )

    @pytest.fixture
    def senders(self, account):
        Sender.objects.create(account=account, name=self.PROMO_SENDER, service="P", country="IN")
        Sender.objects.create(account=account, name="HRLDTX", service="T", country="IN")

    def test_a_transactional_template_under_a_promotional_sender_is_imported_not_linked_and_reported(
        self, account, senders
    ):
        rows = [
            ["Template ID", "Header", "Template Type", "Template Content"],
            ["1107170000000000014", self.PROMO_SENDER, "Transactional", "Thanks for shopping with us"],
        ]

        contact_import = run(rows, options={"account_id": account.pk})

        assert contact_import.status == ContactImport.Status.COMPLETED, contact_import.error_message
        assert (contact_import.created, contact_import.invalid) == (1, 0)  # imported: not an invalid row
        template = DltTemplate.objects.get(dlt_template_id="1107170000000000014")
        assert (template.type, template.body) == ("T", "Thanks for shopping with us")
        assert not template.senders.exists()
        assert template.headers == [self.PROMO_SENDER]
        assert report(contact_import) == [["2", "Header", self.PROMO_SENDER, self.REFUSAL]]

    def test_a_later_row_naming_a_promotional_sender_is_reported_and_the_others_linked(self, account, senders):
        rows = [
            ["Template ID", "Header", "Template Type", "Template Content"],
            ["1107170000000000015", "HRLDTX", "T", "Order {#var#} shipped."],
            ["1107170000000000015", f"{self.PROMO_SENDER}, HERALD", "", ""],
        ]

        contact_import = run(rows, options={"account_id": account.pk})

        assert (contact_import.created, contact_import.duplicates, contact_import.invalid) == (1, 1, 0)
        template = DltTemplate.objects.get(dlt_template_id="1107170000000000015")
        assert sorted(template.senders.values_list("name", flat=True)) == ["HERALD", "HRLDTX"]
        assert report(contact_import) == [["3", "Header", self.PROMO_SENDER, self.REFUSAL]]

    def test_a_row_whose_sender_is_refused_counts_as_imported_so_the_counts_add_up_to_the_rows(self, account, senders):
        """Such a row was counted invalid and its template created too: an import of 4 rows showed 3 created (or
        updated, or duplicates) and 3 invalid. It is counted as the template it imports; its sender is in the report."""
        rows = [
            ["Template ID", "Header", "Template Type", "Template Content"],
            ["1107170000000000021", self.PROMO_SENDER, "Transactional", "Thanks for shopping with us"],
            ["1107170000000000021", f"{self.PROMO_SENDER}, HRLDTX", "", ""],
            ["1107170000000000022", "HRLDTX", "Promotional", "Sale! {#var#} off"],
            ["not an id!", "HRLDTX", "Transactional", "Hello"],
        ]

        contact_import = run(rows, options={"account_id": account.pk})

        counts = {name: getattr(contact_import, name) for name in ("created", "updated", "unchanged", "invalid")}
        assert counts | {"duplicates": contact_import.duplicates} == {
            "created": 2, "updated": 0, "unchanged": 0, "invalid": 1, "duplicates": 1,
        }  # fmt: skip
        assert sum(counts.values()) + contact_import.duplicates == contact_import.rows_read == 4
        assert [row[:3] for row in report(contact_import)] == [
            ["2", "Header", self.PROMO_SENDER],
            ["3", "Header", self.PROMO_SENDER],
            ["4", "Header", "HRLDTX"],
            ["5", "Template ID", "not an id!"],
        ]

    def test_a_promotional_template_under_the_promotional_sender_is_linked(self, account, senders):
        rows = [
            ["Template ID", "Header", "Template Type", "Template Content"],
            ["1107170000000000016", f"{self.PROMO_SENDER}, HRLDTX", "Promotional", "Sale! {#var#} off"],
        ]

        contact_import = run(rows, options={"account_id": account.pk})

        template = DltTemplate.objects.get(dlt_template_id="1107170000000000016")
        assert list(template.senders.values_list("name", flat=True)) == [self.PROMO_SENDER]
        assert (contact_import.created, contact_import.invalid) == (1, 0)  # the T sender refused the other way
        assert report(contact_import)[0][2] == "HRLDTX"
        assert report(contact_import)[0][3].startswith(
            "HRLDTX is a transactional (service T) sender: a promotional template goes out from a promotional"
        )

    def test_a_transactional_template_under_a_transactional_sender_is_linked_a_promotional_one_not(
        self, account, senders
    ):
        rows = [
            ["Template ID", "Header", "Template Type", "Template Content"],
            ["1107170000000000017", "HRLDTX", "Transactional", "Thanks for shopping with us"],
            ["1107170000000000020", "HRLDTX", "Promotional", "Sale! {#var#} off"],
        ]

        contact_import = run(rows, options={"account_id": account.pk})

        assert (contact_import.created, contact_import.invalid) == (2, 0)
        template = DltTemplate.objects.get(dlt_template_id="1107170000000000017")
        assert list(template.senders.values_list("name", flat=True)) == ["HRLDTX"]
        assert not DltTemplate.objects.get(dlt_template_id="1107170000000000020").senders.exists()
        assert [row[:3] for row in report(contact_import)] == [["3", "Header", "HRLDTX"]]

    def test_a_promotional_sender_added_later_is_linked_to_the_promotional_templates_naming_it_only(self, account):
        rows = [
            ["Template ID", "Header", "Template Type", "Template Content"],
            ["1107170000000000018", self.PROMO_SENDER, "Transactional", "Thanks for shopping with us"],
            ["1107170000000000019", self.PROMO_SENDER, "Promotional", "Sale! {#var#} off"],
        ]
        assert run(rows, options={"account_id": account.pk}).invalid == 0  # no such sender yet

        client = admin_client_for()
        response = client.post(
            reverse("admin:providers_sender_add"),
            {"account": account.pk, "name": self.PROMO_SENDER, "channel": "sms", "service": "P", "country": "IN",
             "status": "approved"},
            follow=True,
        )  # fmt: skip

        assert response.status_code == 200
        said = [str(message) for message in response.context["messages"]]
        assert f"Linked to 1 DLT template(s) whose headers, as imported, name {self.PROMO_SENDER}." in said
        linked = DltTemplate.objects.filter(senders__name=self.PROMO_SENDER)
        assert list(linked.values_list("dlt_template_id", flat=True)) == ["1107170000000000019"]


class TestAdminPages:
    """The upload page's DLT options and an imported file's page, as staff see them."""

    UPLOAD = "/admin/contacts/contactimport/add/"

    def test_the_upload_page_marks_the_account_needed_and_offers_only_accounts_that_use_dlt(self, account):
        """It offered every vendor's accounts (an Octopush one among them), unmarked, though a DLT import needs one
        and DLT is MOBtexting's (India) only."""
        page = admin_client_for().get(self.UPLOAD)
        html = page.content.decode()
        assert '<label for="id_dlt_templates__account_id" class="required">Provider account:</label>' in html
        field = page.context["form"]["dlt_templates__account_id"]
        assert [label for value, label in field.field.choices if value] == ["MOBtexting (MOBtexting)"]
        # A DLT import reads no phone number: its script hides the default region as it hides the tags.
        assert '<div class="form-row field-default_region" data-import-kinds="contacts unsubscribers">' in html

    def test_the_upload_page_explains_the_mode_and_mapping_of_a_dlt_import_in_its_own_words(self, account):
        """Chosen for a DLT import, the mode's help still spoke of contacts and tags, and the mapping's of phone,
        e-mail and attributes. Each kind has its own, shown when it is chosen as the kind's fields are."""
        html = admin_client_for().get(self.UPLOAD).content.decode()

        helps = re.findall(r'<div class="help" data-import-kinds="([^"]*)">([^<]*)</div>', html)
        dlt_helps = [unescape(text) for kinds, text in helps if KIND in kinds.split()]
        assert dlt_helps == [
            "DLT templates already there are updated from the file, or with create only left as they are (the file's "
            "headers are linked to them either way).",
            'Optional: {"Template No": "template_id", "Entity Header": "header", "Remarks": ""}. Without it, columns '
            "named template id, header, template type, template content, template name and status… are recognised "
            "and the others are left out.",
        ]
        assert [kinds for kinds, text in helps if "ontacts" in text or "attributes" in text] == ["contacts", "contacts"]

    def test_an_upload_without_an_account_names_the_field_and_asks_for_the_file_again(self, account):
        """The error named the option of the API (account_id) on a field labelled Provider account."""
        response = admin_client_for().post(
            self.UPLOAD, {"file": export(EXPORT[:2]), "kind": KIND, "mode": "create_update"}
        )
        errors = response.context["form"].errors
        assert errors["dlt_templates__account_id"] == [
            "Choose the provider account the templates are registered on: their headers are linked to that account's "
            "senders of those names."
        ]
        assert errors["file"] == [
            "Choose dlt-export.csv again: the browser does not keep a chosen file when the page comes back."
        ]
        assert not ContactImport.objects.exists()

    def test_an_import_through_an_account_that_does_not_use_dlt_is_refused(self, account):
        octopush = ProviderAccount.objects.get(name="Octopush")
        with pytest.raises(ValidationError) as refused:
            contact_import_create(file=export(EXPORT[:2]), kind=KIND, options={"account_id": octopush.pk})
        assert refused.value.message_dict == {
            "options": [
                "Octopush (Octopush) does not use DLT: choose the MOBtexting account the templates are registered on."
            ]
        }

    def test_an_imported_files_page_is_titled_for_its_kind_and_shows_only_what_that_kind_has(self, account):
        """It was titled "View contact import" and showed a default region, which a DLT import does not read, and
        its options as raw JSON ({"account_id": 1})."""
        contact_import = run(EXPORT[:2], options={"account_id": account.pk})
        response = admin_client_for().get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk]))
        html = response.content.decode()
        assert response.context["title"] == "View DLT template import"
        assert "Default region" not in html and "account_id" not in html and ">Tags:<" not in html
        url = reverse("admin:providers_provideraccount_change", args=[account.pk])
        assert f'Provider account: <a href="{url}">MOBtexting (MOBtexting)</a>' in html
