"""The range of ids a campaign's messages have (Campaign.message_ids_from/to), for lists of one campaign's messages;
campaigns that have messages already take theirs from them, in one statement."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0019_message_failures_by_campaign_and_id")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="message_ids_from",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="campaign",
            name="message_ids_to",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.RunSQL(
            """
            UPDATE campaigns_campaign c SET message_ids_from = m.low, message_ids_to = m.high
            FROM (SELECT campaign_id, min(id) AS low, max(id) AS high
                  FROM campaigns_message WHERE campaign_id IS NOT NULL GROUP BY campaign_id) m
            WHERE c.id = m.campaign_id
            """,
            migrations.RunSQL.noop,
        ),
    ]
