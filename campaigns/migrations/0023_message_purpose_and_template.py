"""A transactional message keeps its purpose and DLT template, as it keeps its sender (0015), so that an
Idempotency-Key reused with another purpose or template is refused, even when the first message was suppressed (it
has no frame) or sent (its frame's answer replaced what the frame held of the request).

Adding a column with a constant default changes only the catalogue (PostgreSQL 11+): no rewrite of the message
table. Messages from before keep '' (unknown: a retry of one is not compared on these).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0022_frame_size_at_least_one'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='dlt_template_id',
            field=models.CharField(blank=True, db_default='', default='', help_text="A transactional send's DLT template (its DLT id), kept with its purpose for the same reason.", max_length=32, verbose_name='DLT template id'),
        ),
        migrations.AddField(
            model_name='message',
            name='purpose',
            field=models.CharField(blank=True, db_default='', default='', help_text="A transactional send's purpose (transactional, service or promotional), kept on a suppressed one too, as its sender is: a retry with its Idempotency-Key is compared with it. Empty on a campaign's messages (their campaign's) and on those sent before it was kept.", max_length=16),
        ),
    ]
