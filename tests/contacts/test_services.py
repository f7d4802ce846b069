"""Contact, tag, segment and suppression services: normalisation, field-named errors, set-based tag writes."""

import pytest

from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from contacts import services
from contacts.models import Contact, ContactTag, Operator, Segment, Tag, Unsubscriber
from providers.models import SENDER_SERVICES
from tests.factories import ContactFactory, TagFactory, UnsubscriberFactory

pytestmark = pytest.mark.django_db


class TestContactCreate:
    def test_normalises_the_phone_and_creates_missing_tags(self):
        TagFactory(name="vip")
        contact = services.contact_create(phone="098123 45678", first_name="Asha", tags=["vip", "new", "vip"])
        assert contact.phone == "+919812345678"
        assert sorted(contact.tags.values_list("name", flat=True)) == ["new", "vip"]
        assert Tag.objects.filter(name="new").exists()

    def test_reads_a_national_number_in_the_given_region(self):
        assert services.contact_create(phone="06 12 34 56 78", region="FR").phone == "+33612345678"

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"phone": "12"}, "phone"),
            ({"phone": "+919812345678", "email": "not-an-email"}, "email"),
            ({"phone": "06 12 34 56 78", "region": "XX"}, "region"),
            ({"phone": "+919812345678", "tags": [" "]}, "tags"),
        ],
    )
    def test_refuses_bad_input_naming_the_field_and_stores_nothing(self, fields, field):
        with pytest.raises(ValidationError) as error:
            services.contact_create(**fields)
        assert field in error.value.message_dict
        assert not Contact.objects.exists()

    def test_refuses_a_phone_already_taken_in_another_format(self):
        ContactFactory(phone="+919812345678")
        with pytest.raises(ValidationError) as error:
            services.contact_create(phone="098123 45678")
        assert "phone" in error.value.message_dict


class TestContactUpdate:
    def test_replaces_the_tags_when_given_and_keeps_them_otherwise(self):
        contact = ContactFactory(tags=[TagFactory(name="old"), TagFactory(name="kept")])
        services.contact_update(contact=contact, first_name="Ravi")
        assert sorted(contact.tags.values_list("name", flat=True)) == ["kept", "old"]
        services.contact_update(contact=contact, tags=["kept", "new"])
        assert sorted(contact.tags.values_list("name", flat=True)) == ["kept", "new"]
        contact.refresh_from_db()
        assert contact.first_name == "Ravi"


class TestContactsTag:
    def test_links_many_contacts_in_a_constant_number_of_queries(self, django_assert_max_num_queries):
        contacts = [ContactFactory() for _ in range(30)]
        ids = [c.pk for c in contacts]
        with django_assert_max_num_queries(8):
            services.contacts_tag(contact_ids=ids, tag_names=["spring", "sale"])
        assert ContactTag.objects.filter(contact_id__in=ids).count() == 60
        services.contacts_tag(contact_ids=ids, tag_names=["spring"])  # already there: nothing changes
        assert ContactTag.objects.filter(contact_id__in=ids).count() == 60

    def test_refuses_unknown_contact_ids(self):
        with pytest.raises(ValidationError) as error:
            services.contacts_tag(contact_ids=[999999], tag_names=["x"])
        assert "999999" in error.value.message_dict["contacts"][0]

    def test_untag_removes_only_the_named_tags(self):
        spring, keep = TagFactory(name="spring"), TagFactory(name="keep")
        contact = ContactFactory(tags=[spring, keep])
        assert services.contacts_untag(contact_ids=[contact.pk], tag_names=["spring", "unknown"]) == 1
        assert list(contact.tags.values_list("name", flat=True)) == ["keep"]


class TestSegments:
    def test_create_and_update_set_the_rule(self):
        a, b, c = TagFactory(), TagFactory(), TagFactory()
        segment = services.segment_create(name="S", positive_tags=[a, b], positive_operator="all", negative_tags=[c])
        assert set(segment.positive_tags.all()) == {a, b}
        services.segment_update(segment=segment, positive_tags=[a], negative_operator="all")
        segment.refresh_from_db()
        assert list(segment.positive_tags.all()) == [a]
        assert segment.negative_operator == Operator.ALL
        assert list(segment.negative_tags.all()) == [c]

    def test_saving_counts_the_segment_for_the_lists_and_counting_leaves_its_updated_at(self):
        a, b = TagFactory(), TagFactory()
        ContactFactory(tags=[a])
        ContactFactory(tags=[a, b])
        ContactFactory()
        segment = services.segment_create(name="S", positive_tags=[a])
        assert (segment.contact_count, segment.counted_at is not None) == (2, True)
        segment = services.segment_update(segment=segment, negative_tags=[b])
        assert segment.contact_count == 1
        ContactFactory(tags=[a])
        updated_at = Segment.objects.get(pk=segment.pk).updated_at
        [counted] = services.segments_count(segment_ids=[segment.pk])
        segment.refresh_from_db()
        assert (counted.contact_count, segment.contact_count, segment.updated_at) == (2, 2, updated_at)

    def test_refuses_an_unknown_operator_and_a_duplicate_name(self):
        services.segment_create(name="Taken")
        with pytest.raises(ValidationError) as error:
            services.segment_create(name="Other", positive_operator="most")
        assert "positive_operator" in error.value.message_dict
        with pytest.raises(ValidationError) as error:
            services.segment_create(name="Taken")
        assert "name" in error.value.message_dict


class TestUnsubscribers:
    def test_normalises_the_address(self):
        unsubscriber = services.unsubscriber_create(address="098123 45678", source="api")
        assert unsubscriber.address == "+919812345678"
        assert services.unsubscriber_create(address="Asha@Example.com").address == "asha@example.com"

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"address": "12"}, "address"),
            ({"address": "+919812345678", "scope": "all", "value": "HERALD"}, "value"),
            ({"address": "+919812345678", "scope": "sender"}, "value"),
            ({"address": "+919812345678", "scope": "planet", "value": "x"}, "scope"),
        ],
    )
    def test_refuses_bad_input_naming_the_field(self, fields, field):
        with pytest.raises(ValidationError) as error:
            services.unsubscriber_create(**fields)
        assert field in error.value.message_dict

    def test_refuses_a_duplicate_in_the_same_scope(self):
        UnsubscriberFactory(address="+919812345678")
        with pytest.raises(ValidationError) as error:
            services.unsubscriber_create(address="098123 45678")
        assert "address" in error.value.message_dict
        assert Unsubscriber.objects.count() == 1

    def test_update_checks_like_create(self):
        unsubscriber = UnsubscriberFactory(scope="tag", value="news")
        services.unsubscriber_update(unsubscriber=unsubscriber, scope="all", value="")
        assert unsubscriber.scope == "all"
        with pytest.raises(ValidationError):
            services.unsubscriber_update(unsubscriber=unsubscriber, scope="sender")


def test_the_services_an_opt_out_may_name_are_the_campaigns_purposes_and_the_vendors_codes():
    # contacts imports neither campaigns nor providers, so it writes them out: they must not drift apart.
    assert set(services.SERVICE_PURPOSES) == set(Campaign.Purpose.values)
    assert set(services.SERVICE_CODES) == set(SENDER_SERVICES)
