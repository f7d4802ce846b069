"""The models and the migrations agree: no change is waiting for a migration; a migration that needs data put
right first says so in words."""

import importlib

import pytest

from django.apps import apps
from django.core.management import call_command
from django.db import connection

from contacts.models import Tag, Unsubscriber


@pytest.mark.django_db
def test_no_migration_is_missing():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_tag_names_that_differ_only_in_case_are_named_before_the_constraint_is_added():
    check = importlib.import_module("contacts.migrations.0004_tag_names_unique_any_case")
    with connection.cursor() as cursor:  # the database as it was before the migration (rolled back after)
        cursor.execute("DROP INDEX tag_name_unique_any_case")
    Tag.objects.bulk_create(
        [Tag(name="VIP"), Tag(name="vip"), Tag(name="news"), Tag(name="Spring"), Tag(name="spring")]
    )

    with pytest.raises(RuntimeError) as refused:
        check.refuse_names_that_differ_only_in_case(apps, None)

    assert str(refused.value) == (
        "Tag names must now differ in more than case. Rename or merge these tags first: Spring / spring; VIP / vip"
    )


@pytest.mark.django_db
def test_contacts_and_senders_stored_with_the_country_uk_have_it_as_gb():
    """Migrations contacts 0012 and providers 0006: UK is stored GB since the country rule, so `?country=GB`
    finds those stored before it; two letters that are no code are left as written."""
    from contacts.models import Contact
    from providers.models import Sender
    from tests.factories import ContactFactory, SenderFactory

    uk, lower, other, kept = (ContactFactory(country=code) for code in ("UK", "uk", "IN", "ZZ"))
    sender = SenderFactory(country="UK")
    for name in ("contacts.migrations.0012_country_uk_is_gb", "providers.migrations.0006_sender_country_uk_is_gb"):
        with connection.cursor() as cursor:
            cursor.execute(importlib.import_module(name).Migration.operations[0].sql)

    stored = dict(Contact.objects.filter(pk__in=[c.pk for c in (uk, lower, other, kept)]).values_list("pk", "country"))
    assert [stored[c.pk] for c in (uk, lower, other, kept)] == ["GB", "GB", "IN", "ZZ"]
    assert Sender.objects.get(pk=sender.pk).country == "GB"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "migration, codename, old, new",
    [
        ("0014_import_named_for_what_it_holds", "contactimport", "contact import", "import"),
        ("0015_unsubscriber_named_opt_out", "unsubscriber", "unsubscriber", "opt-out"),
    ],
)
def test_an_existing_databases_permissions_are_renamed_as_the_model_is(migration, codename, old, new):
    """Migrations contacts 0014 and 0015: Django names permissions only when it creates them, so a database made
    before them kept "Can view contact import" and "Can add unsubscriber" in its permission lists, where the admin now
    says "import" and "opt-out"."""
    from django.contrib.auth.models import Permission

    rename = importlib.import_module(f"contacts.migrations.{migration}").rename_permissions
    permissions = Permission.objects.filter(content_type__app_label="contacts", codename__endswith=f"_{codename}")
    for permission in permissions:  # as a database made before the migration has them
        permission.name = permission.name.replace(f" {new}", f" {old}")
        permission.save()

    rename(old, new)(apps, None)

    assert sorted(permissions.values_list("name", flat=True)) == [
        f"Can {action} {new}" for action in ("add", "change", "delete", "view")
    ]


@pytest.mark.django_db(transaction=True)
def test_upgrading_to_heap_only_report_updates_keeps_every_waiting_message_findable():
    """Migration 0012: frames with a message still waiting for a report are open (expiry and polling find
    them there), failed messages are marked, and the rewritten table keeps room on its pages for reports."""
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import CampaignFactory

    campaign = CampaignFactory()
    before, after = (
        [("campaigns", "0011_status_event_unmatched_idx")],
        [("campaigns", "0012_message_hot_report_updates")],
    )
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO campaigns_frame (campaign_id, account_id, seq, size, key, state, attempts, uncertain,
                                                ticket, response, error, error_code, created_at)
                   SELECT %s, %s, n, 100, gen_random_uuid(), 'sent', 1, false, '', '{}', '', '', now()
                   FROM generate_series(0, 2) n RETURNING id""",
                [campaign.pk, campaign.account_id],
            )
            waiting, delivered, failed = sorted(row[0] for row in cursor.fetchall())
            cursor.execute(
                """INSERT INTO campaigns_message (campaign_id, account_id, address, status, frame_id)
                   SELECT %s, %s, '+3361234' || lpad(n::text, 4, '0'),
                          CASE WHEN n = 0 THEN 'sent' WHEN n < 100 THEN 'delivered' WHEN n < 200 THEN 'delivered'
                               ELSE 'undelivered' END,
                          CASE WHEN n < 100 THEN %s WHEN n < 200 THEN %s ELSE %s END
                   FROM generate_series(0, 299) n""",
                [campaign.pk, campaign.account_id, waiting, delivered, failed],
            )
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("campaigns"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM campaigns_frame WHERE reports_open ORDER BY id")
        assert [row[0] for row in cursor.fetchall()] == [waiting]
        cursor.execute("SELECT status, is_failure, count(*) FROM campaigns_message GROUP BY 1, 2 ORDER BY 1")
        assert cursor.fetchall() == [("delivered", False, 199), ("sent", False, 1), ("undelivered", True, 100)]
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'campaigns_message'")
        assert cursor.fetchone()[0] == ["fillfactor=50"]
        # The same rows packed full, as they were before: the rewritten table takes about twice the pages.
        cursor.execute("CREATE TEMPORARY TABLE packed AS SELECT * FROM campaigns_message")
        cursor.execute("SELECT pg_relation_size('campaigns_message'), pg_relation_size('packed')")
        rewritten, packed = cursor.fetchone()
        cursor.execute("DROP TABLE packed")
    assert rewritten >= 1.6 * packed, "the rewrite left room on every page"


@pytest.mark.django_db(transaction=True)
def test_upgrading_to_heap_only_event_marking_queues_every_report_not_applied_yet():
    """Migration 0013: the reports still to apply are queued, due when their back-off says (a report that
    missed a match once is due 10 s after it came); applied ones are not. The event table keeps room on its
    pages, and the link to the message is no longer checked by PostgreSQL."""
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import ProviderAccountFactory

    account = ProviderAccountFactory()
    executor = MigrationExecutor(connection)
    executor.migrate([("campaigns", "0012_message_hot_report_updates")])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO campaigns_statusevent (account_id, source, kind, provider_message_id, external_ref,
                       address, ticket, raw_status, status, error_code, error_text, optout_scope, optout_value,
                       payload, received_at, applied_at, outcome, match_attempts)
                   SELECT %s, 'webhook', 'status', 'pm-' || n, '', '', '', 'DELIVRD', 'delivered', '', '', '', '',
                          '{}', '2026-01-01T00:00Z', CASE WHEN n = 2 THEN now() END,
                          CASE WHEN n = 2 THEN 'applied' WHEN n = 1 THEN 'unmatched' ELSE '' END, (n = 1)::int
                   FROM generate_series(0, 2) n RETURNING id""",
                [account.pk],
            )
            fresh, missed, applied = sorted(row[0] for row in cursor.fetchall())
        executor = MigrationExecutor(connection)
        executor.migrate([("campaigns", "0014_status_event_missed_idx")])
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("campaigns"))

    with connection.cursor() as cursor:
        cursor.execute("SELECT event_id, due_at FROM campaigns_pendingstatusevent ORDER BY event_id")
        queued = [(event_id, due.isoformat()) for event_id, due in cursor.fetchall()]
        assert queued == [(fresh, "2026-01-01T00:00:00+00:00"), (missed, "2026-01-01T00:00:10+00:00")]
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'campaigns_statusevent'")
        assert cursor.fetchone()[0] == ["fillfactor=50"]
        cursor.execute(
            """SELECT count(*) FROM pg_constraint
               WHERE conrelid = 'campaigns_statusevent'::regclass AND contype = 'f'
                 AND pg_get_constraintdef(oid) LIKE '%%campaigns_message%%'"""
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_migration_0013_goes_back_after_a_campaign_with_reports_was_deleted():
    """Its events keep the ids of messages that are gone; going back clears them before the constraint returns."""
    from django.db.migrations.executor import MigrationExecutor

    from campaigns.models import StatusEvent
    from tests.factories import MessageFactory, StatusEventFactory

    message = MessageFactory()
    event = StatusEventFactory(account=message.account, message=message, outcome="applied")
    message.campaign.delete()
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("campaigns", "0012_message_hot_report_updates")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT message_id, outcome FROM campaigns_statusevent WHERE id = %s", [event.pk])
            assert cursor.fetchone() == (None, "applied")
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("campaigns"))
    assert StatusEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_migrate_finishes_a_concurrent_index_build_that_failed_before():
    """A CONCURRENTLY build that failed or was interrupted leaves an INVALID index of its name. The next `migrate`
    drops it and builds the index, where it stopped on "already exists" (0011, 0014) or kept the broken index
    (0010's IF NOT EXISTS)."""
    from django.db.migrations.executor import MigrationExecutor

    leftovers = {
        "message_idempotency_key_unique": "campaigns_message (account_id)",
        "status_event_unmatched_idx": "campaigns_statusevent (account_id)",
        "status_event_missed_idx": "campaigns_statusevent (account_id)",
    }
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("campaigns", "0009_message_index_only_failed")])
        with connection.cursor() as cursor:
            for name, on in leftovers.items():
                cursor.execute(f"CREATE INDEX {name} ON {on}")
                cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name])
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("campaigns"))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s) ORDER BY 1",
            [list(leftovers)],
        )
        indexes = cursor.fetchall()
    assert [(name, valid) for name, valid, _ in indexes] == [
        ("message_idempotency_key_unique", True),
        ("status_event_missed_idx", True),
    ]  # 0014 removed the unmatched one once 0011 had built it
    assert "(account_id, idempotency_key) WHERE" in indexes[0][2]
    assert "WHERE (match_attempts > 0)" in indexes[1][2]


@pytest.mark.django_db(transaction=True)
def test_channel_suppressions_stored_under_a_name_take_the_channels_value_and_suppress_again():
    """Migration 0005 of contacts: before it, "E-mail" was stored as "e-mail", which the audience (comparing with
    "email") never matched. Twins are merged into one row; a value that names no channel is left alone."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("contacts", "0004_tag_names_unique_any_case")])
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO contacts_unsubscriber (address, scope, value, source, reason, created_at)
                   SELECT address, 'channel', value, 'admin', '', now() FROM (VALUES
                       ('+919800000001', 'e-mail'), ('+919800000002', 'voice sms'),
                       ('+919800000003', 'e-mail'), ('+919800000003', 'email'),
                       ('+919800000004', 'e mail'), ('+919800000004', 'e-mail'),
                       ('+919800000005', 'telegram'), ('+919800000006', 'sms'), ('+919800000006', 'whats-app')
                   ) rows (address, value)"""
            )
        executor = MigrationExecutor(connection)
        executor.migrate([("contacts", "0005_channel_suppressions_as_channels")])
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("contacts"))

    assert sorted(Unsubscriber.objects.values_list("address", "value")) == [
        ("+919800000001", "email"),
        ("+919800000002", "voice_sms"),
        ("+919800000003", "email"),
        ("+919800000004", "email"),
        ("+919800000005", "telegram"),
        ("+919800000006", "sms"),
        ("+919800000006", "whatsapp"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_contact_tag_link_keyed_by_its_pair_keeps_every_link_both_ways():
    """Migration 0011 of contacts drops the link's id for a (contact, tag) key: the links stay, a second link of
    the same pair is still refused, and going back gives every link an id again."""
    from django.db import IntegrityError, transaction
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import ContactFactory, TagFactory

    vip, news = TagFactory(name="vip"), TagFactory(name="news")
    first, second = ContactFactory(tags=[vip, news]), ContactFactory(tags=[vip])
    pairs = sorted([(first.pk, vip.pk), (first.pk, news.pk), (second.pk, vip.pk)])

    def links():
        with connection.cursor() as cursor:
            cursor.execute("SELECT contact_id, tag_id FROM contacts_contacttag ORDER BY 1, 2")
            return cursor.fetchall()

    def key():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'contacts_contacttag'::regclass AND contype IN ('p', 'u') ORDER BY contype"
            )
            return [row[0] for row in cursor.fetchall()]

    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("contacts", "0010_contact_email_any_case")])
        assert links() == pairs
        assert key() == ["PRIMARY KEY (id)", "UNIQUE (contact_id, tag_id)"]
        with connection.cursor() as cursor:  # a link added before the upgrade takes an id
            cursor.execute("INSERT INTO contacts_contacttag (contact_id, tag_id) VALUES (%s, %s)", [second.pk, news.pk])
        executor = MigrationExecutor(connection)
        executor.migrate([("contacts", "0011_contact_tag_keyed_by_pair")])
    finally:
        MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes("contacts"))

    assert links() == sorted([*pairs, (second.pk, news.pk)])
    assert key() == ["PRIMARY KEY (contact_id, tag_id)"]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO contacts_contacttag (contact_id, tag_id) VALUES (%s, %s)", [first.pk, vip.pk])


@pytest.mark.django_db
def test_messages_a_failed_campaign_closed_unsent_before_0021_leave_the_delivery_rate():
    """0021 marked the messages closed unsent by a cancel or the send-by deadline, found by their reasons; those of a
    failed campaign, closed with the campaign's own reason, stayed failures in its delivery rate. 0024 marks them:
    only those, not a message the provider refused, nor one closed since (already marked), nor another campaign's."""
    from campaigns.models import Campaign, Message
    from tests.factories import CampaignFactory

    reason = "The provider account's credentials were refused (401). " * 6  # longer than a message's 255
    failed = CampaignFactory(state=Campaign.State.FAILED, state_reason=reason[:500])
    sending = CampaignFactory(state=Campaign.State.SENDING, state_reason="")
    now = failed.created_at

    def message(campaign, n, **fields):
        return Message(campaign=campaign, account=campaign.account, address=f"+3361234{n:04}", **fields)

    Message.objects.bulk_create(
        [message(failed, n, status="failed", reason=reason[:255]) for n in range(3)]
        + [message(failed, 10, status="failed", reason="Invalid number", error_code="E12", submitted_at=now)]
        + [message(failed, 11, status="failed", reason=reason[:255], error_code="not-sent")]  # closed since 0021
        + [message(failed, 12, status="delivered", submitted_at=now)]
        + [message(sending, 20, status="failed", reason=reason[:255])]
    )
    Campaign.objects.filter(pk=failed.pk).update(not_sent=1)

    with connection.cursor() as cursor:
        cursor.execute(
            importlib.import_module("campaigns.migrations.0024_failed_campaign_not_sent").Migration.operations[0].sql
        )

    codes = sorted(Message.objects.filter(campaign=failed, status="failed").values_list("error_code", flat=True))
    assert codes == ["E12", "not-sent", "not-sent", "not-sent", "not-sent"]
    assert Message.objects.get(campaign=sending).error_code == ""
    assert Campaign.objects.get(pk=failed.pk).not_sent == 4
    assert Campaign.objects.get(pk=sending.pk).not_sent == 0


@pytest.mark.django_db
def test_drafts_whose_send_time_was_cleared_before_the_rewording_say_it_as_it_is_said_now():
    """Migration campaigns 0025: a draft stored "Back to draft: its send time was cleared. Launch it to send it now.",
    shown after its badge as "draft Back to draft: …"; it now says UNSCHEDULED_REASON. Nothing else is rewritten."""
    from campaigns.models import Campaign
    from campaigns.services.editing import UNSCHEDULED_REASON
    from tests.factories import CampaignFactory

    old = "Back to draft: its send time was cleared. Launch it to send it now."
    cleared = CampaignFactory(state="draft", state_reason=old)
    other_state = CampaignFactory(state="cancelled", state_reason=old)
    other_reason = CampaignFactory(
        state="draft", state_reason="Unscheduled by a user: nothing is sent until you launch it."
    )
    with connection.cursor() as cursor:
        migration = importlib.import_module("campaigns.migrations.0025_draft_reason_send_time_cleared")
        cursor.execute(migration.Migration.operations[0].sql)

    reasons = dict(Campaign.objects.values_list("pk", "state_reason"))
    assert reasons[cleared.pk] == UNSCHEDULED_REASON == "Its send time was cleared: launch it to send it now."
    assert reasons[other_state.pk] == old
    assert reasons[other_reason.pk] == "Unscheduled by a user: nothing is sent until you launch it."
