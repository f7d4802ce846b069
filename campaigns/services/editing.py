"""Creating and editing campaigns: the consistency rules shared by the API and the admin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, Message
from campaigns.selectors import TEMPLATE_OF_ANOTHER_ACCOUNT, campaign_preflight
from config.times import time_shown, zoned_time_shown
from contacts.audience import AudienceSpec
from contacts.services import segments_keep, tags_keep
from providers.models import Channel

EDITABLE_STATES = (Campaign.State.DRAFT, Campaign.State.SCHEDULED)
# Its page says "draft" before it: "Back to draft: …" said it twice.
UNSCHEDULED_REASON = "Its send time was cleared: launch it to send it now."
RUNNING_STATES = (Campaign.State.PREPARING, Campaign.State.SENDING, Campaign.State.PAUSED)
RELATIONS = ("tags", "segments", "excluded_tags", "contacts")
# A send time or deadline further ahead than this is a mistake (a wrong year, a timestamp read wrongly): refused on its
# field. Near the end of the calendar (9999-12-31) one also broke what counts from it (the promotional window's next
# opening, a recurring run's next time and deadline) with an OverflowError: a 500 on the estimate and the launch.
SCHEDULE_HORIZON_YEARS = 10


def campaign_check(*, account, sender, template, channel: str, instance: Campaign | None = None) -> None:
    """Refuse a sender or template of another account, a channel the account lacks (each on its field, all at once),
    or editing a started campaign (alone: nothing else about it can be changed)."""
    if instance is not None and instance.state not in EDITABLE_STATES:
        raise ValidationError({"state": f"A {instance.get_state_display()} campaign cannot be edited."})
    if account is None:
        return
    errors = {}
    if sender is not None and sender.account_id != account.pk:
        errors["sender"] = f"{sender.name} is not a sender of {account.name}."
    if template is not None and template.account_id not in (None, account.pk):
        errors["template"] = TEMPLATE_OF_ANOTHER_ACCOUNT
    if channel not in (account.channels or []):
        errors["channel"] = f"{account.name} does not have {Channel.label_of(channel)} enabled."
    if errors:
        raise ValidationError(errors)


def campaign_write_problems(*, campaign: Campaign | None, data: Mapping[str, Any]) -> dict[str, list[str]]:
    """What campaign_create (no campaign) or campaign_update refuses in `data` before it writes, by field, every
    problem at once: campaign_check's, and a send time passed or too far ahead, or a recurring one moved back to a
    run that went out. Fields left out of `data` are the new campaign's defaults or the saved ones. (An edited
    scheduled campaign is also held to launching's checks once saved: scheduled_edit_errors.) The API calls it too,
    to tell them with the fields that failed its own checks of their shape (config.api.ServiceCheckedMixin)."""
    saved = campaign or Campaign()
    try:
        campaign_check(
            account=data.get("account", saved.account if saved.account_id else None),
            sender=data.get("sender", saved.sender if saved.sender_id else None),
            template=data.get("template", saved.template if saved.template_id else None),
            channel=data.get("channel") or saved.channel, instance=campaign,
        )  # fmt: skip
    except ValidationError as error:
        problems = error.message_dict
        if "state" in problems:
            return problems
    else:
        problems = {}
    send_at, recurrence = saved.send_at, saved.recurrence
    edited = {"send_at": data.get("send_at", send_at), "recurrence": data.get("recurrence", recurrence) or ""}
    setting = send_at_moved(send_at, edited["send_at"]) or recurrence_dropped(
        campaign=saved, recurrence=edited["recurrence"]
    )
    past = past_send_at_problem(**edited) if setting else ""
    if problem := past or recurring_send_at_problem(campaign=saved, **edited):
        problems["send_at"] = [problem]
    for field, problem in far_time_problems(data).items():
        problems.setdefault(field, [problem])
    return problems


@transaction.atomic
def campaign_create(*, data: dict[str, Any], user=None) -> Campaign:
    relations = {name: data.pop(name) for name in RELATIONS if name in data}
    if problems := campaign_write_problems(campaign=None, data=data):
        raise ValidationError(problems)
    campaign = Campaign.objects.create(created_by=user if user and user.is_authenticated else None, **data)
    _relations_set(campaign, relations)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, data: dict[str, Any]) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    relations = {name: data.pop(name) for name in RELATIONS if name in data}
    if problems := campaign_write_problems(campaign=campaign, data=data):
        raise ValidationError(problems)
    send_at, recurrence = campaign.send_at, campaign.recurrence
    for name, value in data.items():
        setattr(campaign, name, value)
    if campaign.state == Campaign.State.SCHEDULED and (campaign.send_at, campaign.recurrence) != (send_at, recurrence):
        # A scheduled campaign waits for its send time (campaigns_launch_due): without one it would wait for ever.
        if campaign.send_at is None:
            campaign.state, campaign.state_reason = Campaign.State.DRAFT, UNSCHEDULED_REASON
        else:
            campaign.state_reason = scheduled_reason(at=campaign.send_at, recurring=bool(campaign.recurrence))
    campaign.save()
    _relations_set(campaign, relations)
    if errors := scheduled_edit_errors(campaign=campaign):
        raise ValidationError(errors)  # rolls the save back
    return campaign


def scheduled_edit_errors(*, campaign: Campaign, audience: AudienceSpec | None = None) -> dict[str, list[str]]:
    """What launching would refuse in a scheduled campaign (a recurring one too) as edited, by field: beat launches
    it at its send time, when nobody is there to fix it, so an edit it could not be launched with is refused now.
    Nothing for a draft (saved half-done, checked when launched) nor for one whose send time was cleared (it goes
    back to draft). `campaign` holds the edited values, saved or not; `audience` is its audience when its relations
    are not saved yet (an admin form's), as for campaign_estimate."""
    if campaign.state != Campaign.State.SCHEDULED or campaign.send_at is None:
        return {}
    return campaign_preflight(campaign=campaign, audience=audience).errors()


def past_send_at_problem(*, send_at: datetime | None, recurrence: str, now: datetime | None = None) -> str:
    """A send time typed in the past on a campaign that sends once is a mistake (a wrong year, a wrong day): launched,
    it would send at once, not when the person meant. Refused, in words for the field; "" when it is fine. A recurring
    campaign may start from a past time (its first run goes out at launch); a saved send time that has passed since
    is not this (the caller asks only of a send time being set). A time of the current minute, or the one before, is
    now, not the past: typed to the minute ("17:05" at 17:05:40), or an API client's "now" (its clock a few seconds
    behind, the request on its way), it sends at launch, as meant."""
    now_minute = ((now or timezone.now()) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    if not send_at or recurrence or send_at >= now_minute:
        return ""
    return f"{time_shown(send_at)} has passed: choose a later send time, or leave it empty to send when you launch."


def far_time_problems(data: dict[str, Any], now: datetime | None = None) -> dict[str, str]:
    """A send time or send-by deadline given more than SCHEDULE_HORIZON_YEARS ahead, by field, in words for it."""
    now = now or timezone.now()
    horizon = now.replace(year=now.year + SCHEDULE_HORIZON_YEARS, day=min(now.day, 28))
    return {
        # The date as given (in UTC), not time_shown's: a time near the calendar's end has no local time east of UTC.
        name: f"{data[name].astimezone(UTC):%Y-%m-%d} is more than {SCHEDULE_HORIZON_YEARS} years ahead: check the year."
        for name in ("send_at", "send_by")
        if data.get(name) and data[name] > horizon
    }


def recurrence_dropped(*, campaign: Campaign, recurrence: str) -> bool:
    """Whether an edit makes a recurring campaign one that sends once: its start, kept, may be long past (a recurring
    campaign may start from a past time), and launched it would then send at once; so its send time is checked by
    past_send_at_problem as one being set."""
    return bool(campaign.recurrence and not recurrence)


def send_at_moved(saved: datetime | None, given: datetime | None) -> bool:
    """Whether a send time given for a campaign is another than its saved one: to the second, as a form shows it (an
    edit that sends the saved time back, a form's or a PUT's, sets nothing)."""
    if saved is None or given is None:
        return saved is not given
    return saved.replace(microsecond=0) != given.replace(microsecond=0)


def recurring_send_at_problem(*, campaign: Campaign, send_at: datetime | None, recurrence: str) -> str:
    """A recurring campaign's send time moved back to one a run went out at already would send that run again
    (a page opened before beat's tick, saved after it): refused, in words for the field; "" when it is fine."""
    if not (recurrence and send_at and campaign.pk) or send_at == campaign.send_at:
        return ""
    last_run = campaign.runs.order_by("-created_at").values_list("created_at", flat=True).first()
    if last_run is None or send_at > last_run:
        return ""
    return (
        f"Its run of {time_shown(last_run)} went out already: choose a later send time "
        "(or duplicate the campaign to send it again now)."
    )


def _relations_set(campaign: Campaign, relations: dict[str, Any]) -> None:
    """The audience's tags, segments and contacts; the tags and segments are held until commit, so that one is
    not deleted from under the campaign meanwhile (contacts.services.tags_delete)."""
    tags_keep([tag.pk for name in ("tags", "excluded_tags") for tag in relations.get(name) or []])
    segments_keep([segment.pk for segment in relations.get("segments") or []])
    for name, values in relations.items():
        getattr(campaign, name).set(values)


# What a copy of a campaign keeps: its message, audience rule and options, not its times nor anything the engine wrote.
DUPLICATED_FIELDS = (
    "channel", "account", "sender", "template", "text", "purpose", "tags_operator", "recurrence", "smooth_minutes",
    "frame_size",
)  # fmt: skip


@transaction.atomic
def campaign_duplicate(*, campaign_id: int, user=None) -> Campaign:
    """A draft copy of a campaign in any state, to send again or to adapt: the same message, audience and options.
    Its send time and send-by deadline are left empty, as they were the original's (launched, it sends now)."""
    source = Campaign.objects.get(pk=campaign_id)
    copy = Campaign.objects.create(
        name=f"Copy of {source.name}"[: Campaign._meta.get_field("name").max_length],
        created_by=user if user and user.is_authenticated else None,
        **{name: getattr(source, name) for name in DUPLICATED_FIELDS},
    )
    campaign_relations_copy(source=source, target=copy)
    return copy


def campaign_relations_copy(*, source: Campaign, target: Campaign) -> None:
    """Give `target` the audience of `source` (tags, segments, excluded tags, contacts), one INSERT … SELECT each
    whatever their number; its tags and segments are held until commit, as _relations_set holds them."""
    tags_keep(source.tags.values_list("pk", flat=True).union(source.excluded_tags.values_list("pk", flat=True)))
    segments_keep(source.segments.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        for name in RELATIONS:
            field = Campaign._meta.get_field(name)
            table = connection.ops.quote_name(field.remote_field.through._meta.db_table)
            own, other = (connection.ops.quote_name(c) for c in (field.m2m_column_name(), field.m2m_reverse_name()))
            cursor.execute(
                f"INSERT INTO {table} ({own}, {other}) SELECT %s, {other} FROM {table} WHERE {own} = %s",
                [target.pk, source.pk],
            )


def scheduled_reason(*, at: datetime, recurring: bool = False) -> str:
    """What a scheduled campaign says it waits for."""
    when = time_shown(at)
    return f"Recurring; next run {when}." if recurring else f"Scheduled for {when}."


def deferred_reason(*, opening: datetime) -> str:
    """What a promotional campaign launched (or sent now) outside its window says it waits for; its launch and send
    now pages say the same before (admin_views). In the window's own zone with the site's beside it: the launch said
    "09:00 IST" where its page had said "03:30 UTC"."""
    return f"Deferred to {zoned_time_shown(opening)}: promotional messages only inside the allowed hours."


DELETING_REASON = "Being deleted: its messages and frames are deleted in the background."


@dataclass(frozen=True)
class Deletion:
    campaigns: int  # how many
    messages: int  # how many messages they had (counted up to CAMPAIGN_DELETE_INLINE_MAX_MESSAGES + 1)
    background: bool  # hidden now, deleted by campaign_purge_task


def campaign_delete(*, campaign: Campaign) -> Deletion:
    return campaigns_delete(campaign_ids=[campaign.pk])


@transaction.atomic
def campaigns_delete(*, campaign_ids: Iterable[int]) -> Deletion:
    """Delete campaigns with their messages and frames; none if one of them is running (cancel it first). Their
    delivery reports stay (StatusEvent.message).

    Up to CAMPAIGN_DELETE_INLINE_MAX_MESSAGES messages in all, within this transaction, in a few statements. More
    (a million would hold a web request for minutes): the campaigns become `deleting` at once, which hides them
    and which nothing launches, sends or cancels, and a task deletes them in batches (campaign_purge)."""
    campaigns = list(Campaign.objects.select_for_update().filter(pk__in=list(campaign_ids)).order_by("pk"))
    for campaign in campaigns:
        if campaign.state in RUNNING_STATES:
            raise ValidationError(
                {"state": f"A {campaign.get_state_display()} campaign cannot be deleted; cancel it first ({campaign})."}
            )
    ids = [campaign.pk for campaign in campaigns]
    most = settings.CAMPAIGN_DELETE_INLINE_MAX_MESSAGES
    messages = Message.objects.filter(campaign_id__in=ids)[: most + 1].count()  # the (campaign, contact) index
    if messages <= most:
        _campaigns_remove(ids)
        return Deletion(len(ids), messages, background=False)
    from campaigns.tasks import campaign_purge_task

    Campaign.objects.filter(pk__in=ids).update(
        state=Campaign.State.DELETING, state_reason=DELETING_REASON, updated_at=timezone.now()
    )
    transaction.on_commit(lambda: [campaign_purge_task.delay(pk) for pk in ids])
    return Deletion(len(ids), messages, background=True)


def _campaigns_remove(ids: list[int]) -> None:
    # One DELETE: nothing cascades from a message and nothing listens to its deletion, so Django loads none.
    Message.objects.filter(campaign_id__in=ids).delete()
    with connection.cursor() as cursor:
        # Django would load every frame to clear its messages' link (SET_NULL), and delete them a hundred at a
        # time; their messages are gone already.
        cursor.execute("DELETE FROM campaigns_frame WHERE campaign_id = ANY(%s)", [ids])
    Campaign.objects.filter(pk__in=ids).delete()


def campaign_purge(*, campaign_id: int, batch_size: int | None = None) -> bool:
    """Delete a `deleting` campaign: its messages, then its frames, CAMPAIGN_DELETE_BATCH rows a transaction (each
    batch found through the campaign's index, rows another purge holds skipped), then the campaign itself. Safe to
    run twice, or side by side. False if there is no such campaign (deleted already)."""
    if not Campaign.objects.filter(pk=campaign_id, state=Campaign.State.DELETING).exists():
        return False
    batch = batch_size or settings.CAMPAIGN_DELETE_BATCH
    # Messages in the order of the campaign's (campaign, contact) index, each batch after the last one's contact: a
    # batch starting from the top would step over the rows deleted before it again, for a campaign that is most of
    # the table in a sequential scan. Messages whose contact was deleted (no contact) come after, then the frames.
    after = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """WITH batch AS (
                       SELECT id, contact_id FROM campaigns_message WHERE campaign_id = %s AND contact_id > %s
                       ORDER BY contact_id LIMIT %s FOR UPDATE SKIP LOCKED
                   ), gone AS (
                       DELETE FROM campaigns_message m USING batch WHERE m.id = batch.id RETURNING batch.contact_id
                   )
                   SELECT max(contact_id) FROM gone""",
                [campaign_id, after, batch],
            )
            (last,) = cursor.fetchone()
        if last is None:
            break
        after = last
    for table, where in (("campaigns_message", "contact_id IS NULL"), ("campaigns_frame", "true")):
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"""DELETE FROM {table} WHERE id IN (
                            SELECT id FROM {table} WHERE campaign_id = %s AND {where} LIMIT %s FOR UPDATE SKIP LOCKED)""",
                    [campaign_id, batch],
                )
                if not cursor.rowcount:
                    break
    with transaction.atomic():
        if Campaign.objects.select_for_update().filter(pk=campaign_id, state=Campaign.State.DELETING).exists():
            _campaigns_remove([campaign_id])  # what is left (rows a side-by-side purge held) and the campaign
    return True


def campaigns_purge_deleting() -> int:
    """Purge every campaign still `deleting` (its task was lost): the beat's safety net. Returns how many."""
    ids = list(Campaign.objects.filter(state=Campaign.State.DELETING).values_list("pk", flat=True))
    return sum(campaign_purge(campaign_id=pk) for pk in ids)
