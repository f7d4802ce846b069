"""Demo data pointing at the provider sandbox: accounts, senders, DLT templates, contacts, segments, a draft.

Idempotent: everything is found by its natural key and only what is missing is created, so a second
run changes nothing. Contacts are generated deterministically (the same `--contacts N` gives the
same people) and written set-based: batched INSERT … ON CONFLICT DO NOTHING, never a query per contact.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from campaigns.models import Campaign
from contacts.models import Contact, ContactTag, Operator, Segment, Tag, Unsubscriber
from contacts.phones import InvalidPhone, normalize_phone
from contacts.services import segments_count
from providers import services as provider_services
from providers.models import DltTemplate, ProviderAccount, Sender

BATCH = 5000
SEED = 20250101
DLT_ENTITY_ID = "1101234567890123456"

ACCOUNTS = [
    {"name": "MOBtexting sandbox", "kind": "mobtexting", "path": "/mobtexting/api/v2",
     "credentials": {"api_key": "demo-mobtexting-key"}, "options": {}, "price_per_part": "0.1800", "currency": "INR"},
    {"name": "Octopush sandbox", "kind": "octopush", "path": "/octopush/v1/public",
     "credentials": {"login": "demo@herald.local", "api_key": "demo-octopush-key"}, "options": {},
     "price_per_part": "0.0650", "currency": "EUR"},  # sms_premium, the type it sends (no sms_type option)
    {"name": "Devino sandbox", "kind": "devino", "path": "/devino",
     "credentials": {"api_key": "demo-devino-key"}, "options": {}, "price_per_part": "2.5000", "currency": "RUB"},
    {"name": "Hyber sandbox", "kind": "hyber", "path": "/hyber",
     "credentials": {"login": "demo", "api_key": "demo-hyber-password"}, "options": {"client_id": "demo"},
     "price_per_part": "1.2000", "currency": "UAH"},
]  # fmt: skip

SENDERS = [
    {"account": "mobtexting", "name": "HERALD", "service": "T", "country": "IN"},
    {"account": "mobtexting", "name": "756070", "service": "P", "country": "IN"},
    {"account": "octopush", "name": "Herald", "service": "", "country": "FR"},
    {"account": "devino", "name": "Herald", "service": "", "country": "RU"},
    {"account": "hyber", "name": "Herald", "service": "", "country": "UA"},
]

TEMPLATES = [
    {"name": "OTP", "dlt_template_id": "1107170000000000001", "type": "T", "sender": "HERALD",
     "body": "Your OTP is {#var#}. Valid for 10 minutes. - Herald"},
    {"name": "Order shipped", "dlt_template_id": "1107170000000000002", "type": "SE", "sender": "HERALD",
     "body": "Dear {#var#}, your order {#var#} has been shipped. Track it at herald.example/t - Herald"},
    {"name": "Festive offer", "dlt_template_id": "1107170000000000003", "type": "P", "sender": "756070",
     "body": "Festive sale! Get {#var#} off all Herald plans till {#var#}. Visit herald.example/offers. "
             "To stop, SMS STOP to 56070"},
]  # fmt: skip


@dataclass(frozen=True)
class Region:
    country: str
    share: float
    language: str
    timezone: str
    cities: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]

    def phone(self, rng: random.Random) -> str:
        if self.country == "IN":
            return f"+91{rng.choice('6789')}{rng.randrange(10**9):09d}"
        if self.country == "FR":
            return f"+33{rng.choice('67')}{rng.randrange(10**8):08d}"
        if self.country == "RU":
            return f"+79{rng.randrange(10**9):09d}"
        return f"+38067{rng.randrange(10**7):07d}"


REGIONS = [
    Region("IN", 0.80, "hi", "Asia/Kolkata", ("Delhi", "Mumbai", "Bengaluru", "Chennai", "Kolkata", "Hyderabad", "Pune"),
           ("Aarav", "Vivaan", "Aditya", "Arjun", "Ishaan", "Rohan", "Rahul", "Vikram", "Ananya", "Diya", "Priya",
            "Kavya", "Aditi", "Meera", "Sneha", "Pooja", "Neha", "Sanjay", "Amit", "Deepika"),
           ("Sharma", "Verma", "Gupta", "Singh", "Patel", "Reddy", "Iyer", "Nair", "Mehta", "Kapoor", "Joshi",
            "Chopra", "Bose", "Das", "Rao", "Khan", "Agarwal", "Malhotra", "Menon", "Pillai")),
    Region("FR", 0.08, "fr", "Europe/Paris", ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes"),
           ("Camille", "Louise", "Léa", "Chloé", "Manon", "Lucas", "Hugo", "Louis", "Jules", "Gabriel"),
           ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau")),
    Region("RU", 0.07, "ru", "Europe/Moscow", ("Moscow", "Saint Petersburg", "Kazan", "Novosibirsk"),
           ("Ivan", "Dmitry", "Alexei", "Sergei", "Mikhail", "Anna", "Olga", "Natalia", "Elena", "Tatiana"),
           ("Ivanov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Lebedev", "Kozlov", "Novikov", "Morozov", "Volkov")),
    Region("UA", 0.05, "uk", "Europe/Kyiv", ("Kyiv", "Lviv", "Odesa", "Kharkiv"),
           ("Oleksandr", "Andrii", "Taras", "Bohdan", "Yurii", "Oksana", "Iryna", "Olena", "Kateryna", "Nataliia"),
           ("Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Kravchenko", "Melnyk", "Boyko", "Oliinyk",
            "Lysenko", "Marchenko")),
]  # fmt: skip
PLANS = ("free", "basic", "pro", "business")
TAG_NAMES = {
    "customers": "Bought at least once.",
    "vip": "Our best customers.",
    "newsletter": "Opted in to the newsletter.",
    "delhi": "Lives in Delhi.",
    "mumbai": "Lives in Mumbai.",
    "france": "Lives in France.",
}


def _ascii(text: str) -> str:
    return text.lower().replace("é", "e").replace("è", "e").replace(" ", "")


def demo_people(count: int) -> Iterator[tuple[Contact, list[str]]]:
    """`count` deterministic people with their tag names; the first N are the same whatever `count` is."""
    rng = random.Random(SEED)
    weights = [region.share for region in REGIONS]
    seen: set[str] = set()
    made = 0
    while made < count:
        region = rng.choices(REGIONS, weights)[0]
        try:
            phone = normalize_phone(region.phone(rng))
        except InvalidPhone:
            continue
        if phone in seen:
            continue
        seen.add(phone)
        made += 1
        first, last = rng.choice(region.first_names), rng.choice(region.last_names)
        city = rng.choice(region.cities)
        contact = Contact(
            phone=phone,
            email=f"{_ascii(first)}.{_ascii(last)}{made}@example.com" if rng.random() < 0.85 else "",
            first_name=first,
            last_name=last,
            identity=f"CUST-{made:06d}",
            country=region.country,
            language=region.language,
            timezone=region.timezone,
            attributes={"city": city, "plan": rng.choice(PLANS), "last_order": f"HR-{rng.randrange(100000, 999999)}"},
            is_active=made % 97 != 0,
        )
        tags = []
        if rng.random() < 0.6:
            tags.append("customers")
            if rng.random() < 0.2:
                tags.append("vip")
        if rng.random() < 0.4:
            tags.append("newsletter")
        if city in ("Delhi", "Mumbai"):
            tags.append(city.lower())
        if region.country == "FR":
            tags.append("france")
        yield contact, tags


class Command(BaseCommand):
    help = "Load demo data (sandbox provider accounts, senders, templates, contacts, segments, a draft campaign)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=5000, help="How many demo contacts (default 5000).")

    @transaction.atomic
    def handle(self, *args, contacts: int, **options):
        accounts = self.load_accounts()
        senders = self.load_senders(accounts)
        templates = self.load_templates(accounts["mobtexting"], senders)
        tags = self.load_tags()
        people = self.load_contacts(contacts, tags)
        self.load_unsubscribers(people)
        segments = self.load_segments(tags)
        self.load_campaign(accounts["mobtexting"], senders[("mobtexting", "HERALD")], templates, segments)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {len(accounts)} provider accounts on {settings.SANDBOX_URL}, {len(senders)} senders, "
                f"{len(templates)} DLT templates, {Contact.objects.count()} contacts, {len(segments)} segments."
            )
        )

    def load_accounts(self) -> dict[str, ProviderAccount]:
        existing = {account.name: account for account in ProviderAccount.objects.filter(name__in=[a["name"] for a in ACCOUNTS])}  # fmt: skip
        accounts = {}
        for spec in ACCOUNTS:
            account = existing.get(spec["name"])
            if account is None:
                account = provider_services.provider_account_create(
                    kind=spec["kind"],
                    name=spec["name"],
                    base_url=f"{settings.SANDBOX_URL}{spec['path']}",
                    credentials=spec["credentials"],
                    options=spec["options"],
                    price_per_part=spec["price_per_part"],
                    currency=spec["currency"],
                )
            accounts[spec["kind"]] = account
        return accounts

    def load_senders(self, accounts: dict[str, ProviderAccount]) -> dict[tuple[str, str], Sender]:
        existing = {
            (s.account_id, s.name): s for s in Sender.objects.filter(account__in=accounts.values(), channel="sms")
        }
        senders = {}
        for spec in SENDERS:
            account = accounts[spec["account"]]
            sender = existing.get((account.pk, spec["name"]))
            if sender is None:
                india = spec["country"] == "IN"
                sender = provider_services.sender_create(
                    account=account,
                    name=spec["name"],
                    service=spec["service"],
                    country=spec["country"],
                    dlt_entity_id=DLT_ENTITY_ID if india else "",
                    dlt_entity_name="Herald Demo Pvt Ltd" if india else "",
                    status=Sender.Status.APPROVED,
                )
            senders[(spec["account"], spec["name"])] = sender
        return senders

    def load_templates(self, account: ProviderAccount, senders: dict) -> dict[str, DltTemplate]:
        existing = DltTemplate.objects.in_bulk([t["dlt_template_id"] for t in TEMPLATES], field_name="dlt_template_id")
        templates = {}
        for spec in TEMPLATES:
            template = existing.get(spec["dlt_template_id"])
            if template is None:
                template = provider_services.dlt_template_create(
                    name=spec["name"],
                    dlt_template_id=spec["dlt_template_id"],
                    body=spec["body"],
                    type=spec["type"],
                    account=account,
                    senders=[senders[("mobtexting", spec["sender"])]],
                    status=DltTemplate.Status.APPROVED,
                )
            templates[spec["name"]] = template
        return templates

    def load_tags(self) -> dict[str, Tag]:
        Tag.objects.bulk_create([Tag(name=n, description=d) for n, d in TAG_NAMES.items()], ignore_conflicts=True)
        return Tag.objects.in_bulk(list(TAG_NAMES), field_name="name")

    def load_contacts(self, count: int, tags: dict[str, Tag]) -> list[str]:
        """Insert the missing demo contacts and their tag links in batches; returns their phones."""
        phones: list[str] = []
        batch: list[tuple[Contact, list[str]]] = []
        for person in demo_people(count):
            batch.append(person)
            phones.append(person[0].phone)
            if len(batch) == BATCH:
                self._write_contacts(batch, tags)
                batch = []
        if batch:
            self._write_contacts(batch, tags)
        return phones

    def _write_contacts(self, batch: list[tuple[Contact, list[str]]], tags: dict[str, Tag]) -> None:
        Contact.objects.bulk_create([contact for contact, _ in batch], ignore_conflicts=True)
        ids = dict(Contact.objects.filter(phone__in=[c.phone for c, _ in batch]).values_list("phone", "id"))
        links = [
            ContactTag(contact_id=ids[contact.phone], tag_id=tags[name].pk)
            for contact, names in batch
            for name in names
        ]
        ContactTag.objects.bulk_create(links, ignore_conflicts=True, batch_size=BATCH)

    def load_unsubscribers(self, phones: list[str]) -> None:
        picks = [
            (0, Unsubscriber.Scope.ALL, "", Unsubscriber.Source.INBOUND, "Replied STOP"),
            (3, Unsubscriber.Scope.ALL, "", Unsubscriber.Source.ADMIN, "Asked by phone"),
            (5, Unsubscriber.Scope.SENDER, "756070", Unsubscriber.Source.PROVIDER, "Opted out of promotions"),
            (8, Unsubscriber.Scope.SERVICE, "promotional", Unsubscriber.Source.IMPORT, "DND list"),
            (13, Unsubscriber.Scope.TAG, "newsletter", Unsubscriber.Source.API, "Unsubscribed from the newsletter"),
        ]
        rows = [
            Unsubscriber(address=phones[index], scope=scope, value=value, source=source, reason=reason)
            for index, scope, value, source, reason in picks
            if index < len(phones)
        ]
        rows.append(Unsubscriber(address="no-mail@example.com", reason="Bounced", source=Unsubscriber.Source.ADMIN))
        Unsubscriber.objects.bulk_create(rows, ignore_conflicts=True)

    def load_segments(self, tags: dict[str, Tag]) -> dict[str, Segment]:
        specs = {
            "VIP customers": (["customers", "vip"], Operator.ALL, [], Operator.ANY, "Customers who are also VIPs."),
            "Newsletter outside Delhi": (
                ["newsletter"],
                Operator.ANY,
                ["delhi"],
                Operator.ANY,
                "Newsletter readers not in Delhi.",
            ),  # fmt: skip
        }
        segments = {}
        for name, (positive, positive_op, negative, negative_op, description) in specs.items():
            segment, created = Segment.objects.get_or_create(
                name=name,
                defaults={
                    "positive_operator": positive_op,
                    "negative_operator": negative_op,
                    "description": description,
                },
            )
            if created:
                segment.positive_tags.set([tags[n] for n in positive])
                segment.negative_tags.set([tags[n] for n in negative])
            segments[name] = segment
        # The segment list shows each one's last count: taken now, the demo's lists do not read "not counted yet".
        segments_count(segment_ids=[segment.pk for segment in segments.values()])
        return segments

    def load_campaign(self, account, sender, templates, segments) -> Campaign:
        campaign, created = Campaign.objects.get_or_create(
            name="Order shipped (demo)",
            defaults={
                "account": account,
                "sender": sender,
                "template": templates["Order shipped"],
                "purpose": Campaign.Purpose.SERVICE,
                "text": "Dear {{first_name}}, your order {{last_order}} has been shipped. "
                "Track it at herald.example/t - Herald",
            },
        )
        if created:
            campaign.segments.set([segments["VIP customers"]])
        return campaign
