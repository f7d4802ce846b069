"""The estimate and pre-flight checks of a campaign, and the promotional window."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from campaigns.models import RECURRENCE_STEP, Campaign, Message
from campaigns.rendering import (
    CONTACT_FIELDS,
    DLT_PLACEHOLDER_RE,
    VARIABLE_RE,
    compile_text,
    contact_values,
    render,
    text_variables,
)
from config.times import zoned_time_shown
from contacts.audience import AudienceSpec, audience_contacts, audience_rows_sql
from contacts.models import Contact
from providers.backends import get_backend
from providers.dlt import MAX_VARIABLE_LENGTH, template_slots
from providers.models import Channel, DltTemplate, ProviderAccount, Sender
from providers.promo_window import known_zone, opening_together, promo_window_parse
from providers.sms import GSM7_ALL, GSM7_BASIC, GSM7_EXTENSION, SmsParts, sms_parts

TEMPLATE_OF_ANOTHER_ACCOUNT = "This template belongs to another account."


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


@dataclass(frozen=True)
class PartsSpread:
    """How many SMS parts a personalised text takes over its recipients, whose values make it longer or shorter and
    may force UCS-2 (partsspread_of): the cost is `total` parts."""

    recipients: int = 0
    total: int = 0  # parts in all, as billed (a text left empty by its values counts one, as dispatch bills it)
    least: int = 0  # parts of the shortest text
    most: int = 0  # … of the longest
    encodings: dict[str, int] = field(default_factory=dict)  # recipients whose text goes in GSM-7 / UCS-2

    @property
    def differs(self) -> bool:
        return self.least != self.most or len(self.encodings) > 1

    def summary(self) -> str:
        """In words, when the texts do not all take the same parts and encoding; else ""."""
        if not self.differs:
            return ""
        each = "1 part each" if self.most == 1 else f"{self.most} parts each"
        spread = f"{self.least} to {self.most} parts" if self.least != self.most else each
        encodings = ", ".join(f"{n:,} in {name}" for name, n in sorted(self.encodings.items()))
        return f"Texts differ by recipient: {spread} ({encodings}), {self.total:,} parts in all."

    @classmethod
    def uniform(cls, parts: SmsParts, recipients: int) -> PartsSpread:
        """Every recipient gets the same text."""
        each = parts.parts
        return cls(
            recipients, recipients * max(each, 1), each, each, {parts.encoding: recipients} if recipients else {}
        )


@dataclass
class Estimate:
    audience: int = 0  # everyone the audience rules select
    sendable: int = 0  # … minus the suppressed
    suppressed: dict[str, int] = field(default_factory=dict)  # reason → count
    parts: SmsParts | None = None  # the first recipient's text (text_sample)
    spread: PartsSpread | None = None  # every sendable recipient's text: what the cost is reckoned from
    text_sample: str = ""
    missing_variables: dict[str, int] = field(default_factory=dict)  # variable → recipients without a value
    cost: Decimal = Decimal(0)
    currency: str = ""
    frame_size: int = 0
    frames: int = 0
    deferred_until: datetime | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # worth knowing, not stopping the launch

    def as_dict(self) -> dict:
        parts = self.parts
        return {
            "audience": self.audience,
            "sendable": self.sendable,
            "suppressed": self.suppressed,
            "suppressed_total": sum(self.suppressed.values()),
            "encoding": parts.encoding if parts else "",
            "parts": parts.parts if parts else 0,
            "length": parts.length if parts else 0,
            "per_part": parts.per_part if parts else 0,
            "ucs2_character": parts.first_ucs2_char if parts else "",
            "ucs2_position": parts.first_ucs2_index if parts else -1,
            "parts_total": self.spread.total if self.spread else 0,
            "parts_least": self.spread.least if self.spread else 0,
            "parts_most": self.spread.most if self.spread else 0,
            "encodings": dict(self.spread.encodings) if self.spread else {},
            "parts_summary": self.spread.summary() if self.spread else "",
            "text_sample": self.text_sample,
            "missing_variables": self.missing_variables,
            "cost": str(self.cost.quantize(Decimal("0.01"))),
            "currency": self.currency,
            "frame_size": self.frame_size,
            "frames": self.frames,
            "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None,
            "problems": [{"field": p.field, "message": p.message} for p in self.problems],
            "warnings": list(self.warnings),
            "ok": not self.problems,
        }

    def errors(self) -> dict[str, list[str]]:
        """The problems by field, as a ValidationError takes them (what launching, and saving a scheduled
        campaign, refuse with)."""
        errors: dict[str, list[str]] = {}
        for problem in self.problems:
            errors.setdefault(problem.field, []).append(problem.message)
        return errors


def campaign_audience_spec(campaign: Campaign, audience: AudienceSpec | None = None) -> AudienceSpec:
    """Who the campaign is for, and what their suppressions are checked against.

    `audience` gives the tag, segment and contact ids of a campaign whose relations are not saved (the
    admin's live estimate of an unsaved form); without it they are read from the campaign's relations.
    """
    sender: Sender | None = campaign.sender
    if audience is None:
        audience = AudienceSpec(
            tag_ids=[t.pk for t in campaign.tags.all()],
            tags_operator=campaign.tags_operator,
            segment_ids=[s.pk for s in campaign.segments.all()],
            excluded_tag_ids=[t.pk for t in campaign.excluded_tags.all()],
            contact_ids=list(campaign.contacts.values_list("pk", flat=True)),
        )
    return replace(
        audience,
        channel=campaign.channel,
        sender_name=sender.name if sender else "",
        services=suppression_services(
            campaign.account, purpose=campaign.purpose, service=sender.service if sender else ""
        ),
    )


def suppression_services(account: ProviderAccount, *, purpose: str, service: str) -> tuple[str, ...]:
    """What an opt-out from a service is compared with (contacts.audience.suppression_match_sql): the message's
    purpose, and the service code the vendor sends it under (MOBtexting's: the sender's, else the account's option,
    else the purpose's), so that an opt-out of T holds wherever the message goes out as T."""
    options = account.options if isinstance(account.options, dict) else {}
    code = get_backend(account.kind).service_code(options, purpose=purpose, service=service or "")
    return tuple(dict.fromkeys(s for s in (purpose, code) if s))


def campaign_frame_size(campaign: Campaign) -> int:
    backend = get_backend(campaign.account.kind)
    return backend.frame_size(campaign.frame_size or campaign.account.max_recipients_per_request)


SAMPLE_FIELDS = (*CONTACT_FIELDS, "attributes")  # what a text's variables are filled from


def campaign_first_recipient(campaign: Campaign) -> dict | None:
    """The first of the campaign's audience not suppressed (its lowest contact id, as the estimate's sample), by
    its id and SAMPLE_FIELDS; None for nobody."""
    spec = campaign_audience_spec(campaign)
    if spec.is_empty:
        return None
    sql, params = audience_rows_sql(spec)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(contact_id) FROM ({sql}) a WHERE a.status = 'pending'", params)
        first = cursor.fetchone()[0]
    return None if first is None else Contact.objects.filter(pk=first).values("id", *SAMPLE_FIELDS).first()


def _audience_counts(
    spec: AudienceSpec, text: str = "", *, zones: bool = False
) -> tuple[int, int, dict[str, int], dict | None, tuple[PartsSpread, dict[str, int]] | None, dict[str, int]]:
    """(audience, sendable, suppressed by reason, the first pending contact as a sample, for a `text` with
    variables what texts_measure says of it over the sendable members, and with `zones` the sendable members by
    their contact's time zone, "" for none) in one pass over the audience.

    The members are counted, their texts measured (_measured_sql) and the first of them found in the same
    statement: the audience rules and suppressions cost as much as the measuring, and each further pass (measuring,
    the sample) read them all again."""
    sql, params = audience_rows_sql(spec)
    literal, occurrences = _text_occurrences(text)
    measured = None
    # The zone is a third key (the same for all when not asked for): a promotional campaign's recipients whose own
    # clock is outside the window are counted in the same pass.
    zone = "coalesce(c.timezone, '')" if zones else "''"
    with connection.cursor() as cursor:
        if occurrences:
            measure_sql, measure_params = _measured_sql(
                occurrences,
                rows=f"({sql}) a JOIN contacts_contact c ON c.id = a.contact_id",
                keys=("a.status", "a.reason", zone),
                only="a.status = 'pending'",
                least="a.contact_id",
            )
            cursor.execute(measure_sql, [*measure_params, *params])
            grouped = cursor.fetchall()
            rows = [(status, reason, tz, n, first) for status, reason, tz, _ucs2, _septets, _units, n, *_, first in grouped]  # fmt: skip
            measured = _texts_spread(literal, occurrences, [r[3:-1] for r in grouped if r[0] == "pending"])
        else:
            joined = f"({sql}) a JOIN contacts_contact c ON c.id = a.contact_id" if zones else f"({sql}) a"
            cursor.execute(
                f"SELECT status, reason, {zone}, count(*), min(contact_id) FROM {joined} GROUP BY 1, 2, 3", params
            )
            rows = cursor.fetchall()
        first = min((first for status, _reason, _tz, _n, first in rows if status == "pending"), default=None)
        sample = None
        if first is not None:
            cursor.execute(f"SELECT {', '.join(SAMPLE_FIELDS)} FROM contacts_contact WHERE id = %s", [first])
            sample = cursor.fetchone()
    suppressed: dict[str, int] = {}
    by_zone: dict[str, int] = {}
    for status, reason, tz, n, _first in rows:
        if status == "suppressed":
            suppressed[reason] = suppressed.get(reason, 0) + n
        else:
            by_zone[tz] = by_zone.get(tz, 0) + n
    sendable = sum(by_zone.values())
    return (
        sendable + sum(suppressed.values()),
        sendable,
        dict(sorted(suppressed.items(), key=lambda item: (-item[1], item[0]))),  # the largest reason first
        dict(zip(SAMPLE_FIELDS, sample, strict=True)) if sample else None,
        measured,
        by_zone,
    )


def _has_sendable(spec: AudienceSpec) -> bool:
    """Whether anyone in the audience may be sent to: stops at the first, where counting reads them all."""
    sql, params = audience_rows_sql(spec)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM ({sql}) a WHERE a.status = 'pending')", params)
        return cursor.fetchone()[0]


def _audience_size(spec: AudienceSpec) -> int:
    """How many the audience selects, suppressed ones included."""
    sql, params = audience_rows_sql(spec)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) a", params)
        return cursor.fetchone()[0]


def _audience_field(spec: AudienceSpec) -> str:
    """The field an audience's problem is told on: the first of tags, segments and contacts that chooses anyone (its
    excluded tags applied), else the first given. Asked only when no one may be sent to: a campaign of chosen
    contacts alone had it on its empty tags, and one whose tags chose no one beside suppressed contacts on its tags."""
    parts = {
        "tags": replace(spec, segment_ids=[], contact_ids=[]),
        "segments": replace(spec, tag_ids=[], contact_ids=[]),
        "contacts": replace(spec, tag_ids=[], segment_ids=[]),
    }
    given = [name for name, part in parts.items() if not part.is_empty] or ["tags"]
    if len(given) > 1:
        return next((name for name in given if audience_contacts(parts[name]).exists()), given[0])
    return given[0]


def no_one_to_send_to(selected: int) -> str:
    """The problem of an audience where no one may be sent to, `selected` being how many it selects: the estimate's
    and the launch's checks word it alike (the launch said "everyone selected is suppressed (or there is no one)")."""
    if selected == 0:
        return "No one to send to: the audience chosen has no contacts."
    if selected == 1:
        return "No one to send to: the 1 selected is suppressed."
    return f"No one to send to: all {selected:,} selected are suppressed."


def _bracket(characters) -> str:
    """A PostgreSQL regular expression's bracket expression of these characters, each written as its escape."""
    return "".join(f"\\u{ord(char):04x}" for char in sorted(characters))


NOT_GSM7_RE = f"[^{_bracket(GSM7_ALL)}]"
GSM7_EXTENSION_RE = f"[{_bracket(GSM7_EXTENSION)}]"
BEYOND_BMP_RE = "[\\U00010000-\\U0010FFFF]"  # a character UTF-16 writes in two units (an emoji)
# A character that is not one septet and one UTF-16 unit: most values (names, codes, cities) have none, and for
# them this one test is all the measuring there is.
NOT_PLAIN_RE = f"[^{_bracket(GSM7_BASIC)}]"


def _value_sql(name: str) -> tuple[str, list[str]]:
    """A variable's value for the contact `c`, as rendering.contact_values gives it: a field, else an attribute."""
    if name in CONTACT_FIELDS:
        return f"coalesce(c.{name}, '')", []
    return "coalesce(c.attributes ->> %s, '')", [name]


def _text_occurrences(text: str) -> tuple[str, dict[str, int]]:
    """The fixed part of `text` (all but its variables), and how many times each variable occurs in it."""
    pieces = compile_text(text).pieces
    occurrences: dict[str, int] = {}
    for name in pieces[1::2]:
        occurrences[name] = occurrences.get(name, 0) + 1
    return "".join(pieces[0::2]), occurrences


def _measured_sql(
    occurrences: dict[str, int], *, rows: str, keys: tuple[str, ...] = (), only: str = "", least: str = ""
) -> tuple[str, list]:
    """SELECT keys…, ucs2, septets, units, count(*), then for each variable the count without a value, over `rows`
    (a FROM clause with contacts_contact as `c`), grouped by the keys and by what the variables' values add to a
    text: whether one of them has a character outside GSM-7 (ucs2), and their length in GSM-7 septets (an extension
    character counts two) and in UTF-16 units, each value times its occurrences. The fixed text plays no part: its
    own length and encoding are added in Python (_texts_spread), so the same rows serve any text with these
    variables. Rows where the `only` condition is false are counted but not measured (their measures are NULL).
    With `least`, the last column is its least value in the group.

    Each level is fenced with OFFSET 0: flattened, PostgreSQL wrote every test out again wherever its result is
    used, and ran the regular expressions two and three times a value."""
    values, value_params, plain, plain_params, features, feature_params = [], [], [], [], [], []
    for n, name in enumerate(occurrences):
        sql, name_params = _value_sql(name)
        values.append(f"CASE WHEN {only} THEN {sql} END AS v{n}" if only else f"{sql} AS v{n}")
        value_params += name_params
        # One test for the usual value (ASCII letters, digits, GSM-7 punctuation): the others only when it fails.
        plain.append(f"v{n}, v{n} ~ %s AS odd{n}")
        plain_params.append(NOT_PLAIN_RE)
        features.append(
            f"v{n} = '' AS empty{n}, CASE WHEN odd{n} THEN v{n} ~ %s ELSE false END AS bad{n}, "
            f"length(v{n}) + CASE WHEN NOT odd{n} OR v{n} !~ %s THEN 0 "
            f"ELSE length(v{n}) - length(regexp_replace(v{n}, %s, '', 'g')) END AS septets{n}, "
            f"length(v{n}) + CASE WHEN NOT odd{n} OR octet_length(v{n}) = length(v{n}) THEN 0 "
            f"ELSE length(v{n}) - length(regexp_replace(v{n}, %s, '', 'g')) END AS units{n}"
        )
        feature_params += [NOT_GSM7_RE, GSM7_EXTENSION_RE, GSM7_EXTENSION_RE, BEYOND_BMP_RE]
    numbered = list(enumerate(occurrences.values()))
    carried = (*keys, least) if least else keys  # passed up through every level as k0, k1…
    passed = "".join(f"k{i}, " for i in range(len(carried)))
    named = "".join(f"{expression} AS k{i}, " for i, expression in enumerate(carried))
    grouped = "".join(f"k{i}, " for i in range(len(keys)))
    ucs2 = " OR ".join(f"bad{n}" for n, _ in numbered) or "false"
    septets = " + ".join(f"{times} * septets{n}" for n, times in numbered) or "0"
    units = " + ".join(f"{times} * units{n}" for n, times in numbered) or "0"
    empty_counts = "".join(f", count(*) FILTER (WHERE empty{n})" for n, _ in numbered)
    least_value = f", min(k{len(keys)})" if least else ""
    group = ", ".join(str(i) for i in range(1, len(keys) + 4))
    sql = f"""SELECT {grouped}{ucs2} AS ucs2, {septets} AS septets, {units} AS units, count(*){empty_counts}{least_value}
              FROM (
                SELECT {passed}{", ".join(features) or "1"} FROM (
                    SELECT {passed}{", ".join(plain) or "1"} FROM (
                        SELECT {named}{", ".join(values) or "1"} FROM {rows} OFFSET 0) v OFFSET 0) p OFFSET 0) m
              GROUP BY {group}"""
    return sql, [*feature_params, *plain_params, *value_params]


def parts_spread_of(*, text: str, contacts_sql: str, params: list) -> PartsSpread:
    """The parts of `text` filled for each contact `contacts_sql` selects (texts_measure)."""
    return texts_measure(text=text, contacts_sql=contacts_sql, params=params)[0]


def texts_measure(*, text: str, contacts_sql: str, params: list) -> tuple[PartsSpread, dict[str, int]]:
    """The parts of `text` filled for each contact `contacts_sql` selects (rows of contacts_contact as `c`), and how
    many of them have no value for each of its variables (only those some lack), in one statement over them
    (_measured_sql).

    Exact for values that are text (every contact field; attributes that are strings, booleans or whole numbers);
    an attribute that is a number with a fraction or an exponent, a list or an object is measured as PostgreSQL
    writes it (1.50, not Python's 1.5), which may differ by a character or so."""
    literal, occurrences = _text_occurrences(text)
    sql, measure_params = _measured_sql(occurrences, rows=contacts_sql)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*measure_params, *params])
        rows = cursor.fetchall()
    return _texts_spread(literal, occurrences, rows)


def _texts_spread(literal: str, occurrences: dict[str, int], rows: list[tuple]) -> tuple[PartsSpread, dict[str, int]]:
    """The spread of parts and the variables some lack, from _measured_sql's rows (ucs2, septets, units, count,
    count without each variable) and the fixed text's own length and encoding: the few rows are counted here."""
    literal_ucs2 = not set(literal) <= GSM7_ALL
    literal_septets = len(literal) + sum(literal.count(char) for char in GSM7_EXTENSION)
    literal_units = len(literal.encode("utf-16-le")) // 2
    recipients = total = 0
    least, most, encodings = None, 0, {}
    missing = dict.fromkeys(occurrences, 0)
    for is_ucs2, septets, units, n, *without in rows:
        for name, count in zip(occurrences, without, strict=True):
            missing[name] += count
        if literal_ucs2 or is_ucs2:
            length = literal_units + units
            encoding, parts = "UCS-2", 1 if length <= 70 else -(-length // 67)
        else:
            length = literal_septets + septets
            encoding, parts = "GSM-7", 0 if not length else (1 if length <= 160 else -(-length // 153))
        recipients += n
        total += n * max(parts, 1)
        least, most = parts if least is None else min(least, parts), max(most, parts)
        encodings[encoding] = encodings.get(encoding, 0) + n
    spread = PartsSpread(recipients, total, least or 0, most, encodings)
    return spread, {name: count for name, count in missing.items() if count}


def account_promotional_window(account: ProviderAccount) -> dict:
    """The account's promotional window: its own `promo_window` option, else its kind's, else the default."""
    windows = settings.PROMOTIONAL_WINDOWS
    return account.options.get("promo_window") or windows.get(account.kind) or windows["default"]


def send_window_opening(*, account: ProviderAccount, purpose: str, at: datetime) -> datetime | None:
    """None when a message of `purpose` may go out through `account` at `at`; else when the promotional window
    next opens (a campaign waits for it, a transactional send is refused). ValueError when the account's window
    cannot be read (one saved before providers.services checked it)."""
    if purpose != Campaign.Purpose.PROMOTIONAL:
        return None
    return promo_window_parse(account_promotional_window(account), strict=False).opening(at)


def recipient_window_opening(*, account: ProviderAccount, zone: str, at: datetime) -> datetime | None:
    """When a promotional message to a recipient whose contact is in `zone` may next go out through `account`: the
    account's window open and the same hours and days open on the recipient's own clock. `at` itself when both are
    open now; None when they never meet within a week or so. A recipient with no zone (or one not known) keeps to
    the account's window alone. ValueError when the account's window cannot be read."""
    window = promo_window_parse(account_promotional_window(account), strict=False)
    windows = [window, window.in_zone(zone)] if known_zone(zone) else [window]
    return opening_together(windows, at)


def promotional_window_opening(*, campaign: Campaign, at: datetime) -> datetime | None:
    """None when `campaign` may send at `at`; else when the promotional window next opens."""
    return send_window_opening(account=campaign.account, purpose=campaign.purpose, at=at)


def promotional_window_closed_until(*, campaign: Campaign, at: datetime) -> datetime | None:
    """When the window a promotional campaign sends in next opens, if it is closed at `at`; None when it is open, or
    unreadable (the launch said so, and nothing can hold the campaign to it)."""
    if campaign.purpose != Campaign.Purpose.PROMOTIONAL:
        return None
    try:
        return promotional_window_opening(campaign=campaign, at=at)
    except ValueError:
        return None


def _outside_own_window(account: ProviderAccount, by_zone: dict[str, int], at: datetime) -> int:
    """How many of the sendable, counted by their contact's zone, are outside the promotional window on their own
    clock at `at` (a handful of zones, each looked at once); 0 when the account's window cannot be read."""
    try:
        return sum(
            n
            for zone, n in by_zone.items()
            if zone and recipient_window_opening(account=account, zone=zone, at=at) != at
        )
    except ValueError:
        return 0


def _identical_text_excess(campaign: Campaign, spec: AudienceSpec, at: datetime) -> int:
    """Recipients who already got this text from this sender 6 times in the hour before `at` (when it sends): none
    for a campaign that sends over an hour from now."""
    if not campaign.sender_id or not campaign.text or text_variables(campaign.text):
        return 0
    since = at - timedelta(hours=1)
    recent = Message.objects.filter(
        campaign__sender_id=campaign.sender_id, text=campaign.text, submitted_at__gt=since
    ).exclude(campaign_id=campaign.pk or 0)
    if not recent.exists():  # the common case, answered without reading the audience
        return 0
    sql, params = audience_rows_sql(spec)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FROM (
                    SELECT m.address FROM campaigns_message m JOIN campaigns_campaign c ON c.id = m.campaign_id
                    WHERE c.sender_id = %s AND c.id <> %s AND m.text = %s
                      AND m.submitted_at > %s
                      AND m.address IN (SELECT address FROM ({sql}) a WHERE a.status = 'pending')
                    GROUP BY m.address HAVING count(*) >= %s) over_limit""",
            [
                campaign.sender_id,
                campaign.pk or 0,
                campaign.text,
                since,
                *params,
                settings.IDENTICAL_TEXT_LIMIT_PER_HOUR,
            ],
        )
        return cursor.fetchone()[0]


def message_problems(
    *,
    account: ProviderAccount,
    channel: str,
    sender: Sender | None,
    template: DltTemplate | None,
    text: str,
    purpose: str,
    address: str = "",
    sender_required: bool = True,
    no_text: str = "Write the message text (or fill in the template).",
) -> list[Problem]:
    """What stops `text` going out through `account` from `sender`: the account, channel and sender, the DLT
    template (approved, the account's, registered for the sender, matched by the text) and the provider's text
    rules. A campaign's pre-flight and a transactional send (to `address`, where a sender is optional) both
    check these. An empty text is refused with `no_text` (not at all when that is empty)."""
    backend = get_backend(account.kind)
    label = Channel.label_of(channel)
    problems = []
    if not account.is_active:
        problems.append(Problem("account", f"The provider account {account.name} is not active."))
    # Checked when the account is saved, but options saved before a rule (or by a path that skipped the check)
    # would fail every request at send time: said here, before anything is written.
    options = account.options if isinstance(account.options, dict) else None
    if options is None:
        problems.append(Problem("account", f"The options of {account.name} are not an object of names to values: "
                                "fix them on the provider account's page."))  # fmt: skip
    elif problem := backend.options_problem(options):
        problems.append(
            Problem("account", f"The options of {account.name}: {problem} Fix them on the provider account's page.")
        )
    if channel not in (account.channels or []):
        problems.append(Problem("channel", f"{account.name} is not enabled for {label}."))
    if channel not in backend.channels:
        problems.append(Problem("channel", f"{backend.label} cannot send {label}."))
    if sender is None:
        if channel != "email" and backend.sender_required:
            problems.append(Problem("sender", f"Choose a sender ID: {backend.label} has no default sender."))
        elif channel != "email" and sender_required:
            problems.append(Problem("sender", "Choose a sender ID."))
    elif sender.account_id != account.pk or sender.channel != channel:
        problems.append(Problem("sender", f"{sender.name} is not a {channel} sender of {account.name}."))
    elif sender.status != Sender.Status.APPROVED:
        problems.append(Problem("sender", f"Sender {sender.name} is {sender.get_status_display()}, not approved."))
    elif problem := backend.sender_problem(sender.name, service=sender.service, country=sender.country):
        # Refused when senders are saved; one saved before the vendor's rule was checked would fail every message.
        problems.append(Problem("sender", f"Sender {sender.name}: {problem}"))

    if not text.strip():
        if no_text:
            problems.append(Problem("text", no_text))
    elif DLT_PLACEHOLDER_RE.search(text):
        problems.append(Problem("text", "Replace the template's {#var#} placeholders with values or {{variables}}."))
    needs_dlt = backend.uses_dlt and (
        (sender is not None and (sender.country == "IN" or bool(sender.dlt_entity_id))) or address.startswith("+91")
    )
    if template is None and needs_dlt:
        problems.append(Problem("template", "Indian traffic needs a DLT template registered for the sender."))
    if needs_dlt and sender is not None and not sender.dlt_entity_id.strip():
        # MOBtexting refuses a request to an Indian number without entity_id (the PE id, seed 001:2229), frame by frame.
        problems.append(
            Problem("sender", f"Sender {sender.name} has no DLT entity (PE) id, which Indian traffic needs: give it "
                    "on the sender's page (the Principal Entity id registered on the DLT portal).")
        )  # fmt: skip
    if template is not None:
        if template.account_id not in (None, account.pk):
            problems.append(Problem("template", TEMPLATE_OF_ANOTHER_ACCOUNT))
        if template.status != template.Status.APPROVED:
            problems.append(Problem("template", f"Template {template.name} is {template.get_status_display()}."))
        if template.type == DltTemplate.Type.PROMOTIONAL and purpose != Campaign.Purpose.PROMOTIONAL:
            # The promotional window (India 09:00-21:00, seed 001:8909) holds for promotional sends only: under
            # another purpose a promotion went out at any hour, and MOBtexting refused it outside (457 PROMO-TMOUT).
            problems.append(
                Problem("purpose", f"Template {template.name} is promotional on DLT: send it as promotional, so that "
                        "it keeps to the promotional window.")
            )  # fmt: skip
        if sender is not None and not template.senders.filter(pk=sender.pk).exists():
            problems.append(
                Problem("template", f"Template {template.name} is not registered for sender {sender.name}.")
            )
        elif sender is not None and (
            misfit := backend.template_sender_problem(
                template.type, name=sender.name, service=sender.service, country=sender.country
            )
        ):
            problems.append(Problem("template", f"Template {template.name} ({template.get_type_display()}): {misfit}"))
        if text.strip():
            try:
                template_slots(template.body, text)
            except ValidationError as exc:
                for messages in exc.message_dict.values():
                    problems.extend(Problem("text", m) for m in messages)
    if text.strip():
        promotional = purpose == Campaign.Purpose.PROMOTIONAL
        problems += [Problem("text", p) for p in backend.text_problems(options or {}, text, promotional=promotional)]
    return problems


def _dlt_variables_over(spec: AudienceSpec, slots: dict[str, str]) -> dict[str, int]:
    """For each DLT variable holding {{first_name}}… (`slots`, dlt.template_slots), how many sendable recipients' values
    make it longer than 30 characters once filled: DLT refuses those messages (MOBtexting 783). One pass over the
    audience, and only for a text that puts contact variables in a DLT variable."""
    lengths, params = [], []
    for key, slot in slots.items():
        names = VARIABLE_RE.findall(slot)
        if not names:
            continue
        terms = [str(len(VARIABLE_RE.sub("", slot)))]
        for name in names:
            sql, name_params = _value_sql(name)
            terms.append(f"length({sql})")
            params += name_params
        lengths.append((key, " + ".join(terms)))
    if not lengths:
        return {}
    audience_sql, audience_params = audience_rows_sql(spec)
    counted = ", ".join(f"count(*) FILTER (WHERE {length} > {MAX_VARIABLE_LENGTH})" for _key, length in lengths)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {counted} FROM ({audience_sql}) a JOIN contacts_contact c ON c.id = a.contact_id"
            " WHERE a.status = 'pending'",
            [*params, *audience_params],
        )
        counts = cursor.fetchone()
    return {key: n for (key, _length), n in zip(lengths, counts, strict=True) if n}


def campaign_estimate(
    *,
    campaign: Campaign,
    at: datetime | None = None,
    audience: AudienceSpec | None = None,
    counts: bool = True,
    user=None,
) -> Estimate:
    """Audience, suppressions, parts, cost and every pre-flight problem with the field it concerns.

    The campaign may be unsaved (the admin composer's live estimate); then `audience` carries its tag,
    segment and contact ids, since an unsaved campaign has no relations to read them from. Without
    `counts` (the checks at launch) the audience is not counted, only checked to hold someone sendable:
    preparing counts it anyway, and counting a million members twice more cost seconds (bench_audience).
    `user` is whom the estimate is shown to: the text sample filled with the first recipient's fields is one
    contact's data, so for a user who may not view contacts it is the text with its variables as written
    (estimate_fills_sample); the parts and cost are still those of the recipients' own texts.
    """
    at = at or timezone.now()
    account = campaign.account
    backend = get_backend(account.kind)
    estimate = Estimate(currency=account.currency)
    problems = estimate.problems

    text = campaign.text or ""
    problems.extend(
        message_problems(account=account, channel=campaign.channel, sender=campaign.sender,
                         template=campaign.template, text=text, purpose=campaign.purpose)
    )  # fmt: skip

    # Frames.
    requested = campaign.frame_size or account.max_recipients_per_request
    if requested and requested > backend.max_recipients:
        problems.append(
            Problem("frame_size", f"{backend.label} takes at most {backend.max_recipients} recipients per request.")
        )
    estimate.frame_size = campaign_frame_size(campaign)

    # Schedule.
    step = RECURRENCE_STEP.get(campaign.recurrence)
    period = int(step.total_seconds() // 60) if step else None
    if period and campaign.smooth_minutes and campaign.smooth_minutes >= period:
        problems.append(
            Problem("smooth_minutes", f"Spread over {campaign.smooth_minutes} minutes, a run would still be sending "
                    f"when the next one starts: a {campaign.get_recurrence_display()} campaign's runs are "
                    f"{period} minutes apart, so spread each over fewer.")
        )  # fmt: skip
    if campaign.send_by and campaign.send_by <= max(at, campaign.send_at or at):
        problems.append(Problem("send_by", "The send-by deadline is already past (or before the send time)."))
    planned = max(at, campaign.send_at or at)
    try:
        estimate.deferred_until = promotional_window_opening(campaign=campaign, at=planned)
    except ValueError as exc:
        problems.append(Problem("account", f"The account's promo_window option cannot be read: {exc}."))
    deferred = estimate.deferred_until
    if deferred and campaign.send_by and max(at, campaign.send_at or at) < campaign.send_by <= deferred:
        problems.append(
            Problem("send_by", "The send-by deadline comes before the promotional window opens, at "
                    f"{zoned_time_shown(deferred)}, so nothing would be sent.")
        )  # fmt: skip

    # Audience.
    spec = campaign_audience_spec(campaign, audience)
    texts = None
    if spec.is_empty:
        problems.append(Problem("tags", "Choose an audience: tags, segments or contacts."))
    elif not counts:
        if not _has_sendable(spec):  # counted only then: all suppressed, or no one
            problems.append(Problem(_audience_field(spec), no_one_to_send_to(_audience_size(spec))))
    else:
        promotional = campaign.purpose == Campaign.Purpose.PROMOTIONAL
        estimate.audience, estimate.sendable, estimate.suppressed, sample, texts, by_zone = _audience_counts(
            spec, text, zones=promotional
        )
        if promotional and (outside := _outside_own_window(account, by_zone, estimate.deferred_until or planned)):
            estimate.warnings.append(
                f"{outside} recipient{'s are' if outside != 1 else ' is'} outside the promotional window in their own "
                "time zone; they will get it when it opens there."
            )
        if estimate.sendable == 0:
            problems.append(Problem(_audience_field(spec), no_one_to_send_to(estimate.audience)))
        estimate.text_sample = render(text, contact_values(sample))[0] if sample else text
        if campaign.template is not None and estimate.sendable and VARIABLE_RE.search(text):
            try:
                slots = template_slots(campaign.template.body, text)
            except ValidationError:
                slots = {}  # a problem already
            for key, n in _dlt_variables_over(spec, slots).items():
                estimate.warnings.append(
                    f"For {n} recipient{'s' if n != 1 else ''}, the DLT variable {key!r} ({slots[key]}) is longer "
                    f"than {MAX_VARIABLE_LENGTH} characters once filled: DLT refuses "
                    f"{'their messages' if n != 1 else 'that message'} (MOBtexting 783)."
                )
    if not spec.is_empty:
        excess = _identical_text_excess(campaign, spec, max(at, campaign.send_at or at))
        if excess:
            problems.append(
                Problem("text", f"{excess} recipients already got this text from {campaign.sender.name} "
                        f"{settings.IDENTICAL_TEXT_LIMIT_PER_HOUR} times in the last hour.")
            )  # fmt: skip

    measured = estimate.text_sample or text
    parts = sms_parts(measured)
    if parts.encoding == "UCS-2" and measured != text:
        # Point at the character staff typed, when the text itself forces UCS-2.
        own = sms_parts(text)
        if own.encoding == "UCS-2":
            parts = SmsParts(parts.encoding, parts.length, parts.parts, own.first_ucs2_char, own.first_ucs2_index)
    estimate.parts = parts
    if estimate.text_sample and not estimate_fills_sample(user):
        # Measured as the first recipient gets it, shown without their fields (nor a character of them that forces
        # UCS-2: only one the text itself has is pointed at).
        estimate.text_sample = text
        if parts.first_ucs2_char and parts.first_ucs2_char not in text:
            estimate.parts = parts._replace(first_ucs2_char="", first_ucs2_index=-1)
    if counts:
        # Each recipient's text, not the first one's: names and attributes make them longer or shorter, and one
        # character outside GSM-7 (a name in Devanagari, an emoji) puts a text in UCS-2, 70 characters a part.
        if estimate.sendable and texts:
            estimate.spread, estimate.missing_variables = texts
        elif not parts.parts:
            # No text yet (a problem says so): no part per message, and none in all, nor a cost. The parts of
            # an empty message were 0 and the whole audience's one each, as a text its values leave empty is billed.
            estimate.spread = PartsSpread()
        else:
            estimate.spread = PartsSpread.uniform(parts, estimate.sendable)
    estimate.frames = -(-estimate.sendable // estimate.frame_size) if estimate.frame_size else 0
    billed = estimate.spread.total if estimate.spread else estimate.sendable * max(parts.parts, 1)
    estimate.cost = Decimal(billed) * Decimal(str(account.price_per_part))
    return estimate


def estimate_fills_sample(user) -> bool:
    """Whether an estimate shown to `user` may fill its text sample with the first recipient's fields: one contact's
    data, so only for whoever may view contacts (None: no one is shown it, the engine's own checks)."""
    return user is None or user.has_perm("contacts.view_contact")


def campaign_preflight(
    *, campaign: Campaign, at: datetime | None = None, audience: AudienceSpec | None = None
) -> Estimate:
    """The estimate's checks, as launch runs them: every problem, without counting the audience. `audience` as for
    campaign_estimate (a form's audience, not saved yet)."""
    return campaign_estimate(campaign=campaign, at=at, audience=audience, counts=False)
