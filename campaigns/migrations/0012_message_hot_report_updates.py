"""Applying a delivery report becomes a heap-only (HOT) update of the message: no index entry is written.

PostgreSQL updates a row in place on its page, without a new entry in every index, when no indexed value
changes (columns and index conditions alike) and the page has room. A report changes a message's status, which
two indexes named in their condition, and materialising filled every page. So (bench/bench_dlr.py):
- messages still waiting for a report are found through their frames: `Frame.reports_open`, set by the statements
  that make a message wait and cleared by expiry once none of its messages waits (filled in here from the messages);
- failed messages through `is_failure`, a stored generated column that a delivered report leaves unchanged;
- the message table keeps half of each page free (fillfactor 50) for the versions that reports write, so
  messages take about twice the disk space they did.

Adding `is_failure` rewrites the message table once, under an exclusive lock (a stored generated column), which
also leaves that room on the pages of messages already there: on an installation with many millions of
messages, migrate at a quiet hour. Stop the workers and beat first, as for every migration: a worker still on the
code before would record frames without opening them. (WAITING_FRAMES_SQL below can be run again at any time.)
"""

from django.db import migrations, models

WAITING_FRAMES_SQL = """
    UPDATE campaigns_frame f SET reports_open = true
    WHERE EXISTS (SELECT 1 FROM campaigns_message m WHERE m.frame_id = f.id AND m.status IN ('submitted', 'sent'))
"""


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0011_status_event_unmatched_idx'),
    ]

    operations = [
        migrations.AddField(
            model_name='frame',
            name='reports_open',
            field=models.BooleanField(db_default=False, default=False, help_text='Some of its messages may still wait for a delivery report (expiry and polling look only here).'),
        ),
        migrations.RunSQL(WAITING_FRAMES_SQL, migrations.RunSQL.noop),
        migrations.RemoveIndex(
            model_name='frame',
            name='frame_sent_idx',
        ),
        migrations.RemoveIndex(
            model_name='message',
            name='message_awaiting_report_idx',
        ),
        migrations.RemoveIndex(
            model_name='message',
            name='message_campaign_failed_idx',
        ),
        # Before is_failure: its column rewrites the table, and the rewrite then leaves the room on every page.
        migrations.RunSQL(
            "ALTER TABLE campaigns_message SET (fillfactor = 50)", "ALTER TABLE campaigns_message RESET (fillfactor)"
        ),
        migrations.AddField(
            model_name='message',
            name='is_failure',
            field=models.GeneratedField(db_persist=True, expression=models.Q(('status__in', ['expired', 'failed', 'rejected', 'undelivered'])), output_field=models.BooleanField()),
        ),
        migrations.AddIndex(
            model_name='frame',
            index=models.Index(condition=models.Q(('reports_open', True)), fields=['account', 'finished_at'], name='frame_reports_open_idx'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('is_failure', True)), fields=['campaign'], name='message_campaign_failure_idx'),
        ),
    ]
