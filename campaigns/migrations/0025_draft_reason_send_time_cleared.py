"""Drafts whose send time was cleared before the reason was reworded (UNSCHEDULED_REASON) say it as it is said now:
after the draft badge the stored "Back to draft: its send time was cleared. Launch it to send it now." read "draft
Back to draft: …". Only that exact text of a draft is rewritten; any other reason is left as it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0024_failed_campaign_not_sent")]

    operations = [
        migrations.RunSQL(
            """
            UPDATE campaigns_campaign SET state_reason = 'Its send time was cleared: launch it to send it now.'
            WHERE state = 'draft' AND state_reason = 'Back to draft: its send time was cleared. Launch it to send it now.'
            """,
            migrations.RunSQL.noop,
        ),
    ]
