"""The reports that missed a match, indexed by `match_attempts` (which marking a matched report leaves at 0)
instead of by their outcome (which marking every report changes), so that marking stays heap-only (migration
0013). Built CONCURRENTLY, outside a transaction, so that reports keep arriving while it is built.
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations, models

from config.migration_operations import AddIndexConcurrently  # drops a failed earlier build first


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0013_status_event_hot_apply"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="statusevent",
            index=models.Index(
                condition=models.Q(match_attempts__gt=0),
                fields=["account", "address"],
                name="status_event_missed_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="statusevent", name="status_event_unmatched_idx"),
    ]
