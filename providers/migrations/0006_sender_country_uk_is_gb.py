"""Senders stored with the country UK have it as GB, as a sender's country is read since (a contact's rule,
`contacts.validators.country_code`)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0005_dlt_template_headers"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE providers_sender SET country = 'GB' WHERE upper(country) = 'UK'",
            migrations.RunSQL.noop,
        ),
    ]
