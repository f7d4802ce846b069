"""Messages closed before they were sent get the error code `not-sent`, counted per campaign (Campaign.not_sent),
so that no delivery rate counts them as failures. Those closed before this migration are found by the reasons the
cancel and the send-by deadline gave them (a failed campaign's reason is its own: those stay failures)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0020_campaign_message_ids")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="not_sent",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="Messages closed before they were sent (cancelled, failed campaign, send-by deadline), with "
                "the error code not-sent: counted among the failed and expired counters, but in no delivery rate.",
            ),
        ),
        migrations.RunSQL(
            """
            WITH marked AS (
                UPDATE campaigns_message SET error_code = 'not-sent'
                WHERE is_failure AND error_code = '' AND submitted_at IS NULL AND campaign_id IS NOT NULL
                  AND reason IN ('cancelled before sending', 'send-by deadline passed')
                RETURNING campaign_id
            )
            UPDATE campaigns_campaign c SET not_sent = m.n
            FROM (SELECT campaign_id, count(*) AS n FROM marked GROUP BY campaign_id) m WHERE c.id = m.campaign_id
            """,
            migrations.RunSQL.noop,
        ),
    ]
