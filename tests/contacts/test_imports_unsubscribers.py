"""Suppression imports: phones and e-mails, the file's scope or each row's, bad rows reported."""

from pathlib import Path

import pytest

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.imports import contact_import_create, contact_import_run
from contacts.imports.selectors import contact_import_warnings
from contacts.models import ContactImport, Unsubscriber
from tests.factories import SenderFactory, TagFactory, admin_client_for
from tests.import_reports import error_report_rows

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures"
KIND = ContactImport.Kind.UNSUBSCRIBERS


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def run(content, name="stop.csv", **kwargs) -> ContactImport:
    data = content.encode() if isinstance(content, str) else content
    contact_import = contact_import_create(file=SimpleUploadedFile(name, data), kind=KIND, **kwargs)
    return contact_import_run(import_id=contact_import.pk)


def report(contact_import):
    return error_report_rows(contact_import)[1:]


def suppressed():
    return sorted(Unsubscriber.objects.values_list("address", "scope", "value", "source", "reason"))


def test_unsubscriber_import_of_a_txt_suppresses_phones_and_emails_everywhere():
    content = "9812345678\nSomeone@Example.COM\n+33 6 12 34 56 78\nnobody\n9812345678\n"

    contact_import = run(content, "stop.txt", options={"reason": "DND list"})

    assert contact_import.status == ContactImport.Status.COMPLETED
    assert (contact_import.created, contact_import.invalid, contact_import.duplicates) == (3, 1, 1)
    assert suppressed() == [
        ("+33612345678", "all", "", "import", "DND list"),
        ("+919812345678", "all", "", "import", "DND list"),
        ("someone@example.com", "all", "", "import", "DND list"),
    ]
    assert report(contact_import) == [
        ["4", "address", "nobody", "not a valid phone number or e-mail address"],
        ["5", "address", "9812345678", "same address and scope as row 1, which is kept"],
    ]


def test_unsubscriber_import_of_a_txt_with_several_numbers_on_a_line_reports_the_line_not_its_first_number_only():
    """A txt is read by columns when its first line is a table's (Excel's tab-separated exports); a line of several
    numbers is not, or the numbers after the first would be left out without a word, and still messaged."""
    contact_import = run("9812345678, 9812345679\n9812345680\n", "stop.txt")

    assert suppressed() == [("+919812345680", "all", "", "import", "")]
    assert report(contact_import) == [
        ["1", "address", "9812345678, 9812345679", "not a valid phone number or e-mail address"]
    ]


def test_unsubscriber_import_reads_a_tab_separated_txt_export_by_its_columns():
    contact_import = run("Name\tMobile\tReason\r\nAsha\t9812345678\tSTOP by SMS\r\n".encode("utf-16"), "stop.txt")

    assert contact_import.invalid == 0
    assert suppressed() == [("+919812345678", "all", "", "import", "STOP by SMS")]


def test_unsubscriber_import_refuses_a_list_written_on_one_line_naming_the_file():
    """3,000 opted-out numbers on one line, separated by commas: read as one row of 3,000 columns, the upload took
    the web server some seconds (minutes for 20,000: each column's title was compared with every other), and would
    have suppressed the first number only. It is refused, saying how to write the list."""
    line = ",".join(str(9_812_300_000 + n) for n in range(3000))

    with pytest.raises(ValidationError) as error:
        contact_import_create(file=SimpleUploadedFile("stop.csv", line.encode()), kind=KIND)

    assert error.value.message_dict == {
        "file": [
            "The file's first row has 3,000 columns, more than the 1,000 an import reads. A list of numbers or"
            " addresses goes one a line."
        ]
    }
    assert not ContactImport.objects.exists()


def test_unsubscriber_import_reads_a_one_column_list_under_any_title_and_numbers_written_as_decimals():
    contact_import = run("Opted-out customers\n9812345678.0\n9.19812E+11\n")

    assert suppressed() == [("+919812345678", "all", "", "import", "")]
    assert report(contact_import) == [
        ["3", "Opted-out customers", "9.19812E+11", "a number in scientific notation, as a spreadsheet shows a long "
         "number, which has lost its last digits: format the column as text and export again"],
    ]  # fmt: skip


def test_unsubscriber_import_uses_the_files_scope_and_value():
    run("Mobile\n9812345678\n", options={"scope": "sender", "value": "HERALD"})

    assert suppressed() == [("+919812345678", "sender", "HERALD", "import", "")]


def test_unsubscriber_import_takes_each_rows_scope_and_value_where_given():
    content = (
        "Address,Scope,Value,Reason\n"
        "9812345678,,,\n"  # the file's scope
        "9812345679,channel,whatsapp,asked by mail\n"
        "9812345680,all,,\n"
        "9812345681,tag,,\n"  # a tag scope needs its tag
        "9812345682,all,HERALD,\n"  # 'all' takes no value
        "9812345683,planet,,\n"
    )

    contact_import = run(content, options={"scope": "service", "value": "promotional"})

    assert suppressed() == [
        ("+919812345678", "service", "promotional", "import", ""),
        ("+919812345679", "channel", "whatsapp", "import", "asked by mail"),
        ("+919812345680", "all", "", "import", ""),
    ]
    assert report(contact_import) == [
        ["5", "Value", "", "a tag scope needs a value (which tag)"],
        ["6", "Value", "HERALD", "an opt-out from everything takes no value"],
        ["7", "Scope", "planet", "unknown scope; use one of all, channel, sender, tag, service"],
    ]


def test_unsubscriber_import_leaves_existing_suppressions_and_counts_them_unchanged():
    Unsubscriber.objects.create(address="+919812345678", scope="all", value="", source="admin", reason="old")

    contact_import = run("phone\n9812345678\n9812345679\n")

    assert (contact_import.created, contact_import.unchanged) == (1, 1)
    assert Unsubscriber.objects.get(address="+919812345678").source == "admin"


def test_unsubscriber_import_reads_xls():
    SenderFactory(name="HERALD")
    contact_import = run((FIXTURES / "unsubscribers.xls").read_bytes(), "stop.xls")

    assert suppressed() == [
        ("+919812345678", "all", "", "import", ""),
        ("someone@example.com", "sender", "HERALD", "import", ""),
    ]
    assert report(contact_import) == [["4", "Address", "nobody", "not a valid phone number or e-mail address"]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scope": "planet"}, "Unknown scope 'planet'"),
        ({"scope": "all", "value": "x"}, "An opt-out from everything takes no value."),
        ({"colour": "red"}, "Unknown option 'colour'"),
        ({"scope": "channel", "value": "whatsap"}, "Unknown channel 'whatsap'; use one of sms, viber, whatsapp"),
        ({"scope": "service", "value": "promo"}, "Unknown service 'promo'; use a purpose"),
    ],
)
def test_unsubscriber_import_refuses_bad_options(options, message):
    with pytest.raises(ValidationError, match=message):
        contact_import_create(file=SimpleUploadedFile("s.txt", b"9812345678\n"), kind=KIND, options=options)


def test_an_imported_channel_suppression_is_stored_as_the_audience_matches_it():
    """A channel written as users write it (SMS, WhatsApp) is stored lower-cased, as the admin and the API store it:
    the audience compares channels exactly, so 'SMS' would never have suppressed an SMS."""
    from django.db import connection

    from contacts.audience import AudienceSpec, audience_rows_sql
    from contacts.models import Contact

    contact = Contact.objects.create(phone="+919812345678")
    contact_import = run("Address,Scope,Value\n9812345678,channel,SMS\n9812345679,Channel,WhatsApp\n")
    run("phone\n9812345680\n", options={"scope": "channel", "value": " Viber "})

    assert contact_import.invalid == 0
    assert [row[:3] for row in suppressed()] == [
        ("+919812345678", "channel", "sms"),
        ("+919812345679", "channel", "whatsapp"),
        ("+919812345680", "channel", "viber"),
    ]
    sql, params = audience_rows_sql(AudienceSpec(contact_ids=[contact.pk], channel="sms"))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT address, status, reason FROM ({sql}) a", params)
        assert cursor.fetchall() == [("+919812345678", "suppressed", "unsubscribed (channel: sms)")]


def test_a_scope_that_needs_a_value_the_file_cannot_give_is_refused_at_upload():
    with pytest.raises(ValidationError) as caught:
        contact_import_create(file=SimpleUploadedFile("s.txt", b"9812345678\n"), kind=KIND, options={"scope": "sender"})

    assert caught.value.message_dict == {
        "options": ["A sender scope needs a value (which sender ID): the file has no value column."]
    }
    assert not ContactImport.objects.exists()
    # A file whose rows give their own scope and value is taken
    SenderFactory(name="HERALD")
    contact_import = run("Address,Scope,Value\n9812345678,sender,HERALD\n", options={"scope": "sender"})
    assert suppressed() == [("+919812345678", "sender", "HERALD", "import", "")]
    assert contact_import.invalid == 0


def test_a_rows_sender_or_tag_that_names_none_is_imported_and_warned_of_in_the_report():
    """An opt-out from a sender or tag that does not exist (a typo, or one not added yet) suppresses no one until one
    is named so: the row is imported all the same, as the admin and the API record one with a warning, and the error
    report names it, so that a typo can be fixed; it counts as imported, not invalid. Names are matched in any case
    (as the audience matches them)."""
    SenderFactory(name="HERALD")
    TagFactory(name="ΠΕΛΑΤΕΣ")  # PostgreSQL's lower() ends it in σ, Python's in ς
    content = (
        "Address,Scope,Value\n"
        "9812345678,sender,HERALD\n"
        "9812345679,sender,herald\n"
        "9812345680,sender,HERLAD\n"
        "9812345681,tag,πελατεσ\n"
        "9812345682,tag,newsleter\n"
        "9812345683,,newsleter\n"  # the file's scope (tag), the row's value
        "9812345684,,\n"  # the file's scope and value: kept, with the import's warning
        "9812345682,tag,newsleter\n"  # the same opt-out again: a duplicate, as any row's
    )

    contact_import = run(content, options={"scope": "tag", "value": "vip"})

    assert [row[:3] for row in suppressed()] == [
        ("+919812345678", "sender", "HERALD"),
        ("+919812345679", "sender", "herald"),  # as written: matched in any case
        ("+919812345680", "sender", "HERLAD"),
        ("+919812345681", "tag", "πελατεσ"),
        ("+919812345682", "tag", "newsleter"),
        ("+919812345683", "tag", "newsleter"),
        ("+919812345684", "tag", "vip"),
    ]
    why = "this opt-out suppresses nothing until one is; check the spelling (the opt-out is imported all the same)"
    assert report(contact_import) == [
        ["4", "Value", "HERLAD", f"no sender is named 'HERLAD': {why}"],
        ["6", "Value", "newsleter", f"no tag is named 'newsleter': {why}"],
        ["7", "Value", "newsleter", f"no tag is named 'newsleter': {why}"],
        ["9", "Value", "newsleter", f"no tag is named 'newsleter': {why}"],
        ["9", "Address", "9812345682", "same address and scope as row 6, which is kept"],
    ]
    counts = ("rows_read", "created", "unchanged", "invalid", "duplicates")
    assert tuple(getattr(contact_import, name) for name in counts) == (8, 7, 0, 0, 1)
    assert [w.split(":")[0] for w in contact_import_warnings(contact_import)] == ["No tag is named 'vip'"]

    TagFactory(name="newsleter")  # added since: those opt-outs suppress, and the same file again changes nothing
    again = run(content, options={"scope": "tag", "value": "vip"})
    assert (again.created, again.unchanged, again.invalid) == (0, 7, 0)
    assert [row[3] for row in report(again)] == [
        "no sender is named 'HERLAD': " + why,
        "same address and scope as row 6, which is kept",
    ]


def test_a_channel_is_taken_as_people_write_it_and_a_misspelt_one_is_reported_not_stored():
    """A suppression of a channel Herald does not send on would suppress nothing: the row is reported instead."""
    content = (
        "Address,Scope,Value\n"
        "9812345678,channel,E-mail\n"
        "9812345679,channel,Voice SMS\n"
        "9812345680,channel,voice_sms\n"
        "9812345681,channel,whatsap\n"
        "9812345682,channel,telegram\n"
    )

    contact_import = run(content)

    assert [row[:3] for row in suppressed()] == [
        ("+919812345678", "channel", "email"),
        ("+919812345679", "channel", "voice_sms"),
        ("+919812345680", "channel", "voice_sms"),
    ]
    assert (contact_import.created, contact_import.invalid) == (3, 2)
    channels = "sms, viber, whatsapp, rcs, push, email, voice_sms"
    assert report(contact_import) == [
        ["5", "Value", "whatsap", f"unknown channel 'whatsap'; use one of {channels}"],
        ["6", "Value", "telegram", f"unknown channel 'telegram'; use one of {channels}"],
    ]


def test_an_opt_out_imports_page_is_titled_so_and_shows_its_options_in_words():
    """It was titled "View contact import", listed tags (which an opt-out import never takes) and showed its options
    as raw JSON ({"scope": "sender", "value": "HERALD", "reason": ""})."""
    SenderFactory(name="HERALD")
    contact_import = run("phone\n+919812345678\n", options={"scope": "sender", "value": "HERALD"})
    response = admin_client_for().get(reverse("admin:contacts_contactimport_change", args=[contact_import.pk]))
    html = response.content.decode()
    assert response.context["title"] == "View opt-out import"
    assert "Scope: one sender ID; Value: HERALD" in html
    assert '"scope"' not in html and ">Tags:<" not in html
    assert ">Mode:<" not in html, "an opt-out is only ever added, whichever mode was sent"
    assert ">Default region:<" in html  # its numbers are read in it


def test_the_upload_pages_opt_out_options_are_labelled_as_the_opt_outs_fields():
    """They had no label, and the page wrote the field's name: "Unsubscribers  scope", "Unsubscribers  value"."""
    html = admin_client_for().get(reverse("admin:contacts_contactimport_add")).content.decode()

    for name, label in (("scope", "Scope"), ("value", "Value"), ("reason", "Reason")):
        assert f'<label for="id_unsubscribers__{name}">{label}:</label>' in html
    assert "Unsubscribers " not in html
