"""Contacts are found by e-mail in any case: the index holds the addresses lower-cased.

`?email=Asha@Example.com` found nobody stored as asha@example.com (and the other way round), although
suppressions and e-mail audiences compare addresses lower-cased. A lookup of LOWER(email) needs an index of
it; the exact one is no longer read by anything. Contacts without an address still take no entry.

PostgreSQL knows the values of an expression index only once the table is analysed: until then it guesses that
an address is shared by 0.5% of contacts and reads the primary key backwards through all of them rather than the
index (0.5 s on 300,000 contacts). It takes no figures from a partial index, so statistics on LOWER(email) give
them, taken by ANALYZE (here, then by autovacuum), which reads a sample of the table in about a second at any size.
"""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0009_unsubscriber_removal"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="contact",
            name="contact_email_idx",
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                django.db.models.functions.text.Lower("email"),
                condition=models.Q(("email", ""), _negated=True),
                name="contact_email_lower_idx",
            ),
        ),
        migrations.RunSQL(
            "CREATE STATISTICS contact_email_lower_stats ON (lower(email::text)) FROM contacts_contact",
            "DROP STATISTICS contact_email_lower_stats",
        ),
        migrations.RunSQL("ANALYZE contacts_contact", migrations.RunSQL.noop),
    ]
