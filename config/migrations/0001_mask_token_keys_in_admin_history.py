"""The admin's history keeps an object's name for good, and an API token was named by its key in full until
config/admin.py masked it (`3f9a••••`): entries about tokens written before then show a key, a password for the API,
to whoever reads the history (an object's history page, the admin's "Recent actions"). They are masked here the way
config.admin.masked_key masks a key now, in one statement:

- `object_repr`, the name shown, and any mention of that name in `change_message` (of a key longer than 4
  characters: a shorter name could be part of the message's own words);
- `object_id` of entries about `authtoken.Token` itself, whose primary key is the key. Entries about
  `authtoken.TokenProxy`, which the admin writes, name the token by its user's id instead (DRF's proxy maps the
  primary key to the user's), so theirs is left as it is: it is no secret, and the token's history page finds its
  entries by it. A Token entry links to no page (Token has no admin page of its own), so a masked id loses nothing.

Run again, it changes nothing: what is masked already is left alone. Nothing undoes it (the keys are not kept).
"""

from django.db import migrations

MASK_TOKEN_KEYS_SQL = """
    UPDATE django_admin_log AS entry SET
        object_repr = CASE WHEN entry.object_repr = left(entry.object_repr, 4) || '••••' THEN entry.object_repr
                           ELSE left(entry.object_repr, 4) || '••••' END,
        change_message = CASE WHEN entry.object_repr = left(entry.object_repr, 4) || '••••'
                                   OR length(entry.object_repr) <= 4 THEN entry.change_message
                              ELSE replace(entry.change_message, entry.object_repr, left(entry.object_repr, 4) || '••••')
                         END,
        object_id = CASE WHEN kind.model = 'token' AND entry.object_id <> left(entry.object_id, 4) || '••••'
                         THEN left(entry.object_id, 4) || '••••' ELSE entry.object_id END
    FROM django_content_type AS kind
    WHERE kind.id = entry.content_type_id AND kind.app_label = 'authtoken' AND kind.model IN ('token', 'tokenproxy')
      AND (entry.object_repr NOT IN ('', left(entry.object_repr, 4) || '••••')
           OR kind.model = 'token' AND entry.object_id NOT IN ('', left(entry.object_id, 4) || '••••'))
"""


class Migration(migrations.Migration):

    dependencies = [
        ('admin', '0003_logentry_add_action_flag_choices'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.RunSQL(MASK_TOKEN_KEYS_SQL, migrations.RunSQL.noop),
    ]
