"""factory_boy factories for every model, plus an API client helper. Keep them general: every app's tests use them.

Phones are valid, unique E.164 numbers (+9198…, which `phonenumbers` accepts for any 8 digits);
provider accounts have an empty base_url (the vendor's own) unless a test points them at the sandbox.
"""

from functools import cache

import factory
from factory.django import DjangoModelFactory

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from campaigns.models import Campaign, Frame, Message, StatusEvent
from contacts.models import Contact, ContactTag, Operator, Segment, Tag, Unsubscriber
from providers.models import DltTemplate, ProviderAccount, Sender

CREDENTIALS = {
    "mobtexting": {"api_key": "test-mobtexting-key-0001"},
    "octopush": {"login": "test@herald.local", "api_key": "test-octopush-key-0001"},
    "devino": {"api_key": "test-devino-key-0001"},
    "hyber": {"login": "test", "api_key": "test-hyber-password-0001"},
}
CURRENCIES = {"mobtexting": "INR", "octopush": "EUR", "devino": "RUB", "hyber": "UAH"}
PASSWORD = "correct horse battery staple"


@cache
def _password_hash() -> str:
    """Hashed once per session: the default hasher takes most of a second by design."""
    return make_password(PASSWORD)


class UserFactory(DjangoModelFactory):
    """A user; `superuser=True` for an admin, `permissions=["contacts.view_contact", …]` for a narrow one."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    class Params:
        superuser = factory.Trait(is_superuser=True, is_staff=True)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.LazyFunction(_password_hash)

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        for dotted in extracted or []:
            app_label, codename = dotted.split(".")
            self.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def admin_client_for(user=None):
    """A browser-like client logged in to the admin (a superuser unless a user is given)."""
    from django.test import Client

    client = Client()
    client.force_login(user or UserFactory(superuser=True))
    return client


def api_client_for(user) -> APIClient:
    """An API client authenticated with the user's DRF token, as an external system would be."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


class TagFactory(DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"tag-{n}")


class ContactFactory(DjangoModelFactory):
    """A contact with a unique valid Indian mobile; `tags=[tag, …]` links tags."""

    class Meta:
        model = Contact
        skip_postgeneration_save = True

    phone = factory.Sequence(lambda n: f"+9198{n:08d}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda c: f"{c.first_name}.{c.last_name}.{c.phone[-6:]}@example.com".lower())
    country = "IN"
    language = "en"
    timezone = "Asia/Kolkata"

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            ContactTag.objects.bulk_create([ContactTag(contact=self, tag=tag) for tag in extracted])


class SegmentFactory(DjangoModelFactory):
    """A segment; `positive_tags=[…]` / `negative_tags=[…]` set its rule (none: everyone)."""

    class Meta:
        model = Segment
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Segment {n}")
    positive_operator = Operator.ANY
    negative_operator = Operator.ANY

    @factory.post_generation
    def positive_tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.positive_tags.set(extracted)

    @factory.post_generation
    def negative_tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.negative_tags.set(extracted)


class UnsubscriberFactory(DjangoModelFactory):
    class Meta:
        model = Unsubscriber

    address = factory.Sequence(lambda n: f"+9197{n:08d}")
    scope = Unsubscriber.Scope.ALL
    value = ""
    source = Unsubscriber.Source.ADMIN


class ProviderAccountFactory(DjangoModelFactory):
    """An account of `kind` (default MOBtexting) with test credentials and the vendor's default URL."""

    class Meta:
        model = ProviderAccount

    kind = ProviderAccount.Kind.MOBTEXTING
    name = factory.Sequence(lambda n: f"Account {n}")
    base_url = ""
    credentials = factory.LazyAttribute(lambda a: dict(CREDENTIALS[a.kind]))
    options = factory.LazyAttribute(lambda a: {"client_id": "test"} if a.kind == "hyber" else {})
    currency = factory.LazyAttribute(lambda a: CURRENCIES[a.kind])
    price_per_part = "0.10000"


class SenderFactory(DjangoModelFactory):
    class Meta:
        model = Sender

    account = factory.SubFactory(ProviderAccountFactory)
    name = factory.Sequence(lambda n: f"HR{n:04d}")  # an Indian transactional header: 6 capitals or digits (TRAI)
    country = "IN"
    service = "T"
    dlt_entity_id = "1101234567890123456"
    status = Sender.Status.APPROVED


class DltTemplateFactory(DjangoModelFactory):
    """An approved DLT template; `senders=[…]` registers it for senders."""

    class Meta:
        model = DltTemplate
        skip_postgeneration_save = True

    account = factory.SubFactory(ProviderAccountFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    dlt_template_id = factory.Sequence(lambda n: f"1107{n:015d}")
    type = DltTemplate.Type.TRANSACTIONAL
    body = "Your OTP is {#var#}. Valid for 10 minutes. - Herald"
    status = DltTemplate.Status.APPROVED

    @factory.post_generation
    def senders(self, create, extracted, **kwargs):
        if create and extracted:
            self.senders.set(extracted)


class CampaignFactory(DjangoModelFactory):
    """A draft campaign with a sender on its account; audience via `tags=[…]`, `segments=[…]`, `contacts=[…]`."""

    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Campaign {n}")
    account = factory.SubFactory(ProviderAccountFactory)
    sender = factory.SubFactory(SenderFactory, account=factory.SelfAttribute("..account"))
    text = "Hello {{first_name}}"
    purpose = Campaign.Purpose.TRANSACTIONAL
    state = Campaign.State.DRAFT

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)

    @factory.post_generation
    def segments(self, create, extracted, **kwargs):
        if create and extracted:
            self.segments.set(extracted)

    @factory.post_generation
    def excluded_tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.excluded_tags.set(extracted)

    @factory.post_generation
    def contacts(self, create, extracted, **kwargs):
        if create and extracted:
            self.contacts.set(extracted)


class FrameFactory(DjangoModelFactory):
    class Meta:
        model = Frame

    campaign = factory.SubFactory(CampaignFactory)
    account = factory.LazyAttribute(lambda f: f.campaign.account if f.campaign else ProviderAccountFactory())
    seq = factory.Sequence(lambda n: n + 1)


class MessageFactory(DjangoModelFactory):
    class Meta:
        model = Message

    campaign = factory.SubFactory(CampaignFactory)
    contact = factory.SubFactory(ContactFactory)
    account = factory.LazyAttribute(lambda m: m.campaign.account if m.campaign else ProviderAccountFactory())
    address = factory.LazyAttribute(lambda m: m.contact.phone if m.contact else "+919800000000")
    text = "Hello"


class StatusEventFactory(DjangoModelFactory):
    class Meta:
        model = StatusEvent

    account = factory.SubFactory(ProviderAccountFactory)
    raw_status = "DELIVRD"
    status = "delivered"
    provider_message_id = factory.Sequence(lambda n: f"pm-{n}")
