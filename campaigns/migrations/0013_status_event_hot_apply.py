"""Applying a delivery report marks its event with a heap-only (HOT) update: no index entry is written.

Marking an event (its message, outcome and time applied) wrote a new entry into each of the event table's four
indexes, and PostgreSQL checked the new link to the message against the message table one row at a time at
commit (bench/bench_dlr.py). So:
- the events still to apply move to a queue of their own, PendingStatusEvent (filled in here from the events not
  applied yet, due when their back-off says), instead of an index on the unapplied ones;
- the event's link to its message loses its index and its database constraint;
- the event table keeps half of each page free (fillfactor 50) for the versions that marking writes, from the
  next page on (existing pages are not rewritten);
- migration 0014 indexes the reports that missed a match by `match_attempts` instead of their outcome.

Stop the web processes, the workers and beat first, as for every migration: a process on the code before would
store reports without queueing them. EVENTS_QUEUE_SQL below can be run again at any time to queue such reports.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.db import migrations, models

EVENTS_QUEUE_SQL = """
    INSERT INTO campaigns_pendingstatusevent (event_id, due_at)
    SELECT id, received_at + make_interval(secs => 10 * match_attempts) FROM campaigns_statusevent
    WHERE applied_at IS NULL
    ON CONFLICT (event_id) DO NOTHING
"""

FORGET_DELETED_MESSAGES_SQL = """
    UPDATE campaigns_statusevent e SET message_id = NULL
    WHERE e.message_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM campaigns_message m WHERE m.id = e.message_id)
"""


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0012_message_hot_report_updates'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingStatusEvent',
            fields=[
                ('event', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='campaigns.statusevent')),
                ('due_at', models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now)),
            ],
        ),
        migrations.RunSQL(EVENTS_QUEUE_SQL, migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name='statusevent',
            name='status_event_unapplied_idx',
        ),
        migrations.RemoveIndex(
            model_name='statusevent',
            name='status_event_message_idx',
        ),
        migrations.AlterField(
            model_name='statusevent',
            name='message',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='campaigns.message'),
        ),
        # Backwards, before the constraint is added again: the events of deleted messages lose their link.
        migrations.RunSQL(migrations.RunSQL.noop, FORGET_DELETED_MESSAGES_SQL),
        migrations.RunSQL(
            "ALTER TABLE campaigns_statusevent SET (fillfactor = 50)",
            "ALTER TABLE campaigns_statusevent RESET (fillfactor)",
        ),
    ]
