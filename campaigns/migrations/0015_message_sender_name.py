"""A transactional message keeps its sender ID, so that an Idempotency-Key reused with another sender is refused
even when the first message was suppressed (a suppressed message has no frame, which is where the sender was).

Adding a column with a constant default changes only the catalogue (PostgreSQL 11+): no rewrite of the message
table. Messages from before keep '' and their sender stays readable from their frame.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0014_status_event_missed_idx'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='sender_name',
            field=models.CharField(blank=True, db_default='', default='', help_text="A transactional send's sender ID, kept on a suppressed one too (it has no frame); a campaign's messages are from their campaign's sender.", max_length=32),
        ),
    ]
