"""An index of the delivery reports that gave up matching, by account and number (recovery looks for a frame's
reports among them). Built CONCURRENTLY, outside a transaction, so that reports keep arriving while it is built;
only unmatched events take an entry, so storing and applying reports does not pay for it.
"""

from django.db import migrations, models

from config.migration_operations import AddIndexConcurrently  # drops a failed earlier build first


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0010_message_idempotency_key"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="statusevent",
            index=models.Index(
                condition=models.Q(outcome="unmatched"),
                fields=["account", "address"],
                name="status_event_unmatched_idx",
            ),
        ),
    ]
