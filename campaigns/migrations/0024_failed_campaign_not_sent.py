"""Messages a *failed* campaign closed before they were sent, before migration 0021, get the error code `not-sent`
too, counted in the campaign's `not_sent`, so that no delivery rate counts them as failures. 0021 found the closed
ones by the reasons cancel and the send-by deadline give; a failed campaign closes its messages with its own reason
(`campaign_fail`, `frames_close_after_stop`), which is its `state_reason`, cut to the message's 255 characters. Those
closed since 0021 already have the code, and a message the provider refused has a reason of the provider's."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0023_message_purpose_and_template")]

    operations = [
        migrations.RunSQL(
            """
            WITH marked AS (
                UPDATE campaigns_message m SET error_code = 'not-sent'
                FROM campaigns_campaign c
                WHERE c.state = 'failed' AND m.campaign_id = c.id AND m.status = 'failed' AND m.error_code = ''
                  AND m.submitted_at IS NULL AND c.state_reason <> '' AND m.reason = left(c.state_reason, 255)
                RETURNING m.campaign_id
            )
            UPDATE campaigns_campaign c SET not_sent = c.not_sent + m.n
            FROM (SELECT campaign_id, count(*) AS n FROM marked GROUP BY campaign_id) m WHERE c.id = m.campaign_id
            """,
            migrations.RunSQL.noop,
        ),
    ]
