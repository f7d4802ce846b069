"""Messages take the client's Idempotency-Key of a transactional send, unique per account where one is given.

The column has a database default, so adding it does not rewrite the table. The unique index is built
CONCURRENTLY, outside a transaction, so that a table of millions of messages stays writable (dispatch,
reports, preparing) while it is built; campaign messages have no key and take no entry.
"""

from django.db import migrations, models

from config.migration_operations import DropInvalidIndex

INDEX_SQL = (
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS message_idempotency_key_unique "
    "ON campaigns_message (account_id, idempotency_key) WHERE NOT (idempotency_key = '')"
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('campaigns', '0009_message_index_only_failed'),
        ('contacts', '0004_tag_names_unique_any_case'),
        ('providers', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='idempotency_key',
            field=models.CharField(blank=True, db_default='', default='', help_text="A transactional send's Idempotency-Key: a retry with the same key gets this message back, not a second send.", max_length=255),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                DropInvalidIndex("message_idempotency_key_unique"),  # else IF NOT EXISTS keeps a failed build
                migrations.RunSQL(INDEX_SQL, "DROP INDEX CONCURRENTLY IF EXISTS message_idempotency_key_unique"),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name='message',
                    constraint=models.UniqueConstraint(condition=models.Q(('idempotency_key', ''), _negated=True), fields=('account', 'idempotency_key'), name='message_idempotency_key_unique'),
                ),
            ],
        ),
    ]
