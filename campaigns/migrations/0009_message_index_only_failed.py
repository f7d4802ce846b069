"""The (campaign, status) index on messages becomes an index of a campaign's failed messages only.

Every message paid for an entry in the full index when it was written and again at each status change
(bench/bench_audience.py, bench/bench_dispatch.py); the one query that needed it, the progress page's
breakdown of failures, reads failed messages only, which the partial index holds.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0008_time_ordered_external_ref'),
        ('contacts', '0002_lighter_contact_tag'),
        ('providers', '0001_initial'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='message',
            name='message_campaign_status_idx',
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(condition=models.Q(('status__in', ['expired', 'failed', 'rejected', 'undelivered'])), fields=['campaign'], name='message_campaign_failed_idx'),
        ),
    ]
