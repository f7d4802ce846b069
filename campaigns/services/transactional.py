"""Transactional sends (an OTP, an order update): one message through the same frame machinery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns.models import IDEMPOTENCY_KEY_CONSTRAINT, Frame, Message
from campaigns.rendering import text_variables
from campaigns.selectors import (
    account_promotional_window,
    message_problems,
    recipient_window_opening,
    send_window_opening,
    suppression_services,
)
from config.times import zoned_time_shown
from contacts.audience import SUPPRESSION_REASON_SQL, AudienceSpec, suppression_match_sql
from contacts.models import Contact
from contacts.phones import InvalidPhone, normalize_address
from providers.dlt import template_render
from providers.models import Channel, DltTemplate, ProviderAccount, Sender
from providers.sms import sms_parts


def _suppression_reason(address: str, contact_id: int | None, spec: AudienceSpec) -> str:
    sql, params = suppression_match_sql("%s", "%s", spec)
    with connection.cursor() as cursor:
        # Placeholders in order: the address, the scope values, then the contact (for tag scopes).
        cursor.execute(f"SELECT {SUPPRESSION_REASON_SQL} FROM ({sql}) u", [address, *params, contact_id])
        row = cursor.fetchone()
    return row[0] if row else ""


@dataclass(frozen=True)
class TransactionalRequest:
    """A transactional send as checked: the address normalised, the text as it will go (a template rendered)."""

    account: ProviderAccount
    address: str
    text: str
    sender: Sender | None
    template: DltTemplate | None
    channel: str
    purpose: str


def transactional_checked(
    *,
    account: ProviderAccount,
    to: str,
    text: str = "",
    sender: Sender | None = None,
    template: DltTemplate | None = None,
    variables: dict[str, str] | None = None,
    channel: str = "sms",
    purpose: str = "transactional",
    sender_required: bool = False,
) -> TransactionalRequest:
    """The send as it will go, or ValidationError naming every field that stops it.

    A text given with a template must match it; without a text, the template is rendered from `variables`.
    The account, sender, template and text are held to the rules a campaign's pre-flight checks
    (`message_problems`), an Indian number on MOBtexting needing a DLT template as an Indian sender does. Without a
    sender the vendor's default goes, unless `sender_required` (a campaign's test: the campaign needs one)."""
    errors: dict[str, list[str]] = {}
    try:
        address = normalize_address(to)
    except InvalidPhone:
        address = ""
        errors["to"] = ["Enter a valid phone number (E.164, e.g. +919812345678) or e-mail address."]
    if address and ("@" in address) != (channel == Channel.EMAIL):
        # An e-mail address on SMS was looked up as a contact's phone: a 400 under non_field_errors saying "Enter a
        # valid phone number", though the field and the number were not what was wrong.
        label = Channel.label_of(channel)
        goes_to = "an e-mail address" if channel == Channel.EMAIL else "a phone number"
        errors["to"] = [f"{label} goes to {goes_to}, not {address}."]
    if template is None and variables:
        # Ignored before: {"text": "Hi {{name}}", "variables": {"name": "Ann"}} sent "Hi {{name}}".
        errors["variables"] = [
            "Variables fill a DLT template: give its template too, or write their values into the text."
        ]
    elif template is None and (names := text_variables(text)):
        # A campaign fills {{first_name}} from each contact; a transactional text is sent as given, braces and all.
        errors["text"] = [
            f"{{{{{names[0]}}}}} would reach the recipient as written: a transactional text is sent as given, so "
            "write the value in (or give a template and its variables)."
        ]
    no_text = "Give the text, or a template and its variables."
    if template is not None and not text.strip():
        try:
            text = template_render(template.body, variables or {})
        except ValidationError as exc:
            errors["variables"] = [m for messages in exc.message_dict.values() for m in messages]
            no_text = ""  # the variables are what is wrong
    elif template is not None and variables:
        # Both given: the text went and the variables were ignored, though they may have said something else.
        try:
            filled = template_render(template.body, variables)
        except ValidationError as exc:
            errors["variables"] = [m for messages in exc.message_dict.values() for m in messages]
        else:
            if filled != text:
                errors["variables"] = [
                    "The template filled with these variables is not the text given: give the text or the "
                    "variables, not both."
                ]
    problems = message_problems(
        account=account, channel=channel, sender=sender, template=template, text=text, purpose=purpose,
        address=address, sender_required=sender_required, no_text=no_text,
    )  # fmt: skip
    for problem in problems:
        errors.setdefault(problem.field, []).append(problem.message)
    if errors:
        raise ValidationError(errors)
    return TransactionalRequest(account, address, text, sender, template, channel, purpose)


@transaction.atomic
def message_send_transactional(
    *,
    account: ProviderAccount,
    to: str,
    text: str = "",
    sender: Sender | None = None,
    template: DltTemplate | None = None,
    variables: dict[str, str] | None = None,
    channel: str = "sms",
    purpose: str = "transactional",
    idempotency_key: str = "",
) -> Message:
    """Create the message and its frame and send it now; an unsubscribed address gets a `suppressed` message.

    A promotional message outside the account's promotional window is refused, saying when the window opens
    (a campaign would wait for it; a single message is the client's to send again or not)."""
    send = transactional_checked(account=account, to=to, text=text, sender=sender, template=template,
                                 variables=variables, channel=channel, purpose=purpose)  # fmt: skip
    return transactional_send_checked(send, idempotency_key)


def transactional_send_checked(
    send: TransactionalRequest, idempotency_key: str, *, campaign_name: str = "", enqueue: bool = True
) -> Message:
    """Send a checked request now (or refuse it outside the promotional window); a retry answered by an
    earlier message does not come here. `campaign_name`: the campaign a test send tries (services/send_test.py),
    which the vendor is told as it would be for the campaign (Octopush's list_name, Hyber's tag). Without
    `enqueue`, the caller sends the frame itself once this commits."""
    from campaigns.tasks import frame_send_task

    account, sender, template, channel, purpose = send.account, send.sender, send.template, send.channel, send.purpose
    now = timezone.now()
    try:
        opening = send_window_opening(account=account, purpose=purpose, at=now)
    except ValueError as exc:  # a window stored before providers.services checked it
        raise ValidationError({"account": f"The account's promo_window option cannot be read: {exc}."}) from None
    window = account_promotional_window(account)
    hours = f"{account.name} sends promotional messages only from {window['start']} to {window['end']}"
    if opening is not None:
        raise ValidationError(
            {"purpose": f"{hours} ({window.get('tz', 'UTC')}); the window opens at {zoned_time_shown(opening)}."}
        )

    contact = Contact.objects.filter(phone=send.address).only("pk", "timezone").first()
    if purpose == "promotional" and contact is not None and contact.timezone:
        # Also on the recipient's own clock (a contact in Réunion of a French account): no promotion at night there.
        together = recipient_window_opening(account=account, zone=contact.timezone, at=now)
        if together != now:
            zone = contact.timezone
            when = (
                f"it opens there at {zoned_time_shown(together.astimezone(ZoneInfo(zone)))}"
                if together is not None
                else f"no hour is inside the window both in {window.get('tz', 'UTC')} and in {zone}"
            )
            raise ValidationError(
                {"purpose": f"{hours}, also in the recipient's own time zone ({zone}), where it is closed now; {when}."}
            )
    spec = AudienceSpec(
        channel=channel,
        sender_name=sender.name if sender else "",
        services=suppression_services(account, purpose=purpose, service=sender.service if sender else ""),
    )
    reason = _suppression_reason(send.address, contact.pk if contact else None, spec)
    parts = sms_parts(send.text)
    message = Message(
        account=account, contact=contact, channel=channel, address=send.address, text=send.text,
        sender_name=sender.name if sender else "", parts=parts.parts, encoding=parts.encoding,
        purpose=purpose, dlt_template_id=template.dlt_template_id if template else "", idempotency_key=idempotency_key,
    )  # fmt: skip
    if reason:
        message.status, message.reason = "suppressed", reason
        message.save()
        return message
    message.frame = Frame.objects.create(
        account=account, seq=0, size=1,
        response={"transactional": {
            "sender": sender.name if sender else "", "channel": channel, "purpose": purpose,
            "service": sender.service if sender else "", "dlt_entity_id": sender.dlt_entity_id if sender else "",
            "dlt_template_id": template.dlt_template_id if template else "",
            **({"campaign_name": campaign_name} if campaign_name else {}),
        }},
    )  # fmt: skip
    message.save()
    if not enqueue:
        return message
    # Robustly: with the broker unreachable the message is committed all the same, and a 500 would have the client
    # send it again; beat's watchdog sends the frame once the broker is back (lifecycle's ENQUEUE_ROBUSTLY).
    transaction.on_commit(lambda: frame_send_task.delay(message.frame_id), robust=True)
    return message


IDEMPOTENCY_KEY_MAX = Message._meta.get_field("idempotency_key").max_length


def message_send_transactional_once(*, idempotency_key: str, **send) -> tuple[Message, bool]:
    """`message_send_transactional` at most once per account and key: a client that retries (its answer was
    lost, its broker failed after our commit) gets the first message back instead of a second send.

    Returns the message and whether it was sent before; without a key, every call sends. Of two requests with
    one key at once, the database's unique index makes the second wait for the first to commit, and it then
    answers with the first's message. A key used before for another number, text, channel, sender, DLT template or
    purpose is refused, naming the key and what differs. A key is kept IDEMPOTENCY_KEY_RETENTION_HOURS (24 h by default): after that, it sends anew."""
    if not idempotency_key:
        return message_send_transactional(**send), False
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationError({"idempotency_key": f"The Idempotency-Key is over {IDEMPOTENCY_KEY_MAX} characters."})
    if "\x00" in idempotency_key:  # PostgreSQL's text takes no NUL: looking it up was a 500
        raise ValidationError({"idempotency_key": "The Idempotency-Key cannot contain a null character."})
    checked = transactional_checked(**send)  # a retry is answered only for a request that would be sent
    account = checked.account
    kept_since = idempotency_keys_kept_since()
    earlier = Message.objects.filter(account=account, idempotency_key=idempotency_key).first()
    expired = earlier is not None and earlier.created_at < kept_since
    if earlier is None or expired:
        try:
            with transaction.atomic():
                if expired:  # before idempotency_keys_expire came to it: the key is free again
                    Message.objects.filter(
                        account=account, idempotency_key=idempotency_key, created_at__lt=kept_since
                    ).update(idempotency_key="")
                return transactional_send_checked(checked, idempotency_key), False
        except IntegrityError as exc:
            if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") != IDEMPOTENCY_KEY_CONSTRAINT:
                raise
        earlier = Message.objects.get(account=account, idempotency_key=idempotency_key)
    _check_same_request(earlier, checked)
    return earlier, True


def _check_same_request(earlier: Message, send: TransactionalRequest) -> None:
    # The sender is on the message; one from before it was kept there has it on its frame only.
    # A suppressed one from before migration 0015 has neither: its sender is unknown, and not compared.
    earlier_sender = earlier.sender_name or (
        earlier.frame.response.get("transactional", {}).get("sender", "") if earlier.frame_id else None
    )
    # The purpose and template are on the message since migration 0023 (every one since has a purpose): before, they
    # are unknown, and not compared. The variables are compared as the text they made.
    kept = bool(earlier.purpose)
    differing = [
        part
        for part, differs in (
            ("address" if "@" in send.address + earlier.address else "number", send.address != earlier.address),
            ("text", send.text != earlier.text),
            ("channel", send.channel != earlier.channel),
            ("sender", earlier_sender is not None and (send.sender.name if send.sender else "") != earlier_sender),
            (
                "DLT template",
                kept and (send.template.dlt_template_id if send.template else "") != earlier.dlt_template_id,
            ),
            ("purpose", kept and send.purpose != earlier.purpose),
        )
        if differs
    ]
    if differing:
        # Named, so that the client sees which part of its request is not the first's ("another text": a variable).
        other = ", ".join(differing[:-1]) + (" and " if len(differing) > 1 else "") + differing[-1]
        raise ValidationError(
            {
                "idempotency_key": f"This Idempotency-Key was used for message {earlier.pk} to {earlier.address} "
                f"with another {other}; use a new key for a new message."
            }
        )


def idempotency_keys_kept_since() -> datetime:
    """Keys of messages created before this have expired (IDEMPOTENCY_KEY_RETENTION_HOURS)."""
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS)


def idempotency_keys_expire(*, batch_size: int = 10_000) -> int:
    """Forget the Idempotency-Keys of transactional messages older than the retention (the messages stay), so that
    a key can be used again and the unique index holds only the keys a retry may still present. Set-based, in
    batches of `batch_size` rows, each its own short transaction; rows a report is updating right now are skipped
    and taken by the next run. Returns how many keys were forgotten."""
    total = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                WITH expired AS (
                    SELECT id FROM campaigns_message
                    WHERE idempotency_key <> '' AND created_at < %s
                    LIMIT %s FOR UPDATE SKIP LOCKED
                )
                UPDATE campaigns_message m SET idempotency_key = '', updated_at = now()
                FROM expired WHERE m.id = expired.id
                """,
                [idempotency_keys_kept_since(), batch_size],
            )
            done = cursor.rowcount
        total += done
        if done < batch_size:
            return total
