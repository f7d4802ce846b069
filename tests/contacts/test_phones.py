"""Phone normalisation to E.164: valid, invalid, national numbers in the default region, a region override."""

import pytest

from django.core.exceptions import ValidationError

from contacts.models import Contact
from contacts.phones import InvalidPhone, normalize_address, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+919812345678", "+919812345678"),
        ("+91 98123-45678", "+919812345678"),
        ("(098123) 45678", "+919812345678"),  # national, read in the default region (IN)
        ("9812345678", "+919812345678"),
        ("0033 6 12 34 56 78", "+33612345678"),  # international prefix
        ("+7 912 345-67-89", "+79123456789"),
    ],
)
def test_valid_numbers_come_out_in_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12", "", "   ", "not a phone", "+91981234", "+999123456789"])
def test_invalid_numbers_are_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_a_region_override_reads_national_numbers_of_that_country():
    assert normalize_phone("06 12 34 56 78", "FR") == "+33612345678"
    assert normalize_phone("06 12 34 56 78", "fr") == "+33612345678"


def test_the_default_region_comes_from_settings(settings):
    settings.DEFAULT_PHONE_REGION = "FR"
    assert normalize_phone("06 12 34 56 78") == "+33612345678"


def test_a_suppression_address_is_a_phone_or_a_lower_cased_email():
    assert normalize_address("098123 45678") == "+919812345678"
    assert normalize_address("  Asha@Example.COM ") == "asha@example.com"
    with pytest.raises(InvalidPhone):
        normalize_address("asha@")


def test_model_validation_normalises_the_phone_and_names_the_field_when_invalid():
    contact = Contact(phone="098123 45678")
    contact.full_clean(validate_unique=False)
    assert contact.phone == "+919812345678"
    with pytest.raises(ValidationError) as error:
        Contact(phone="12").full_clean(validate_unique=False)
    assert "phone" in error.value.message_dict
