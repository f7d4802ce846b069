"""Personalised texts: variables filled from a contact's fields and attributes (fields win), missing ones empty."""

import pytest

from campaigns.rendering import CONTACT_FIELDS, compile_text, contact_values, render

ROW = {
    **dict.fromkeys(CONTACT_FIELDS),
    "first_name": "Asha",
    "email": "",
    "attributes": '{"city": "Pune", "first_name": "not me", "plan": null, "visits": 3}',
}

CASES = [
    ("a field", "Hello {{first_name}}", "Hello Asha", {"first_name": "Asha"}),
    ("spaces inside the braces", "Hello {{ first_name }}!", "Hello Asha!", {"first_name": "Asha"}),
    ("an attribute", "From {{city}}", "From Pune", {"city": "Pune"}),
    ("a field wins over an attribute of its name", "{{first_name}}", "Asha", {"first_name": "Asha"}),
    ("an empty field is empty, not the attribute", "[{{email}}]", "[]", {"email": ""}),
    ("a null attribute is empty", "[{{plan}}]", "[]", {"plan": ""}),
    ("a number attribute is its digits", "{{visits}} visits", "3 visits", {"visits": "3"}),
    ("a variable the contact lacks is empty", "[{{coupon}}]", "[]", {"coupon": ""}),
    ("a variable used twice", "{{city}}, {{city}}", "Pune, Pune", {"city": "Pune"}),
    ("no variable", "Hello friend", "Hello friend", {}),
    ("single braces are text", "{city} {{city}}", "{city} Pune", {"city": "Pune"}),
]


@pytest.mark.parametrize(("label", "text", "expected", "used"), CASES, ids=[c[0] for c in CASES])
def test_render(label, text, expected, used):
    assert render(text, contact_values(ROW)) == (expected, used)
    # Dispatch works out only the variables the text uses, and parses attributes only when it needs one.
    template = compile_text(text)
    assert template.fill(contact_values(ROW, template.names)) == (expected, used)


def test_only_the_text_s_variables_are_worked_out_and_attributes_only_when_one_is_used():
    fields_only = compile_text("Hello {{first_name}} {{last_name}}")
    assert not fields_only.uses_attributes
    unreadable = {**ROW, "attributes": "not json"}  # never parsed for a text of fields only
    assert contact_values(unreadable, fields_only.names) == {"first_name": "Asha", "last_name": ""}
    assert compile_text("Hello {{city}}").uses_attributes


@pytest.mark.parametrize("attributes", [[1, 2], "[1, 2]", 42, '"vip"'])
def test_attributes_stored_as_no_object_give_no_names_instead_of_breaking_the_text(attributes):
    """Before contacts.validators.validate_attributes the admin stored such values; a launch page sampling that
    contact failed with a 500."""
    row = {**ROW, "attributes": attributes}
    assert render("Hi {{first_name}} from {{city}}", contact_values(row))[0] == "Hi Asha from "
