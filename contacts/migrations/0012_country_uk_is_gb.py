"""Contacts stored with the country UK have it as GB, as one written UK has been stored since the country rule
(`contacts.validators.COUNTRY_CODE_ALIASES`): the API's `?country=GB` missed them. Other stored values that are no
code are left as written (an edit of another field keeps them)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_contact_tag_keyed_by_pair"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE contacts_contact SET country = 'GB' WHERE upper(country) = 'UK'",
            migrations.RunSQL.noop,
        ),
    ]
