"""Channel suppressions stored under a channel's name as people write it ("e-mail", "voice sms") take the
channel's value ("email", "voice_sms"), which is what the audience compares them with: until now such a
suppression suppressed nothing.

Before, a channel was only lower-cased; now the admin, the API and the imports store the value
(contacts.services.suppression_value). Where an address has the suppression twice (under the value and a
name, or two names), one row is kept and the others are deleted: they say the same. Values that name no
channel ("telegram") are left as they are.
"""

from django.db import migrations

# The channels as this migration knows them (contacts.models.Channel, frozen): value -> label.
CHANNELS = {
    "sms": "SMS",
    "viber": "Viber",
    "whatsapp": "WhatsApp",
    "rcs": "RCS",
    "push": "Push",
    "email": "E-mail",
    "voice_sms": "Voice SMS",
}
NAMES = "(VALUES {})".format(
    ", ".join(
        f"('{name}', '{value}')"
        for value, label in CHANNELS.items()
        for name in sorted({value.replace("_", ""), label.lower().replace(" ", "").replace("-", "")})
    )
)
# A channel suppression whose value is a channel's name, but not its value: (id, address, channel).
MISNAMED = f"""
    SELECT u.id, u.address, n.channel
    FROM contacts_unsubscriber u
    JOIN {NAMES} n (squashed, channel) ON regexp_replace(lower(u.value), '[[:space:]_-]+', '', 'g') = n.squashed
    WHERE u.scope = 'channel' AND u.value <> n.channel
"""
RENAME_SQL = f"""
    UPDATE contacts_unsubscriber u SET value = keep.channel
    FROM (
        SELECT DISTINCT ON (m.address, m.channel) m.id, m.channel
        FROM ({MISNAMED}) m
        WHERE NOT EXISTS (
            SELECT 1 FROM contacts_unsubscriber o
            WHERE o.address = m.address AND o.scope = 'channel' AND o.value = m.channel
        )
        ORDER BY m.address, m.channel, m.id
    ) keep
    WHERE u.id = keep.id
"""
# What is left misnamed has a twin under the channel's value now.
DELETE_TWINS_SQL = f"DELETE FROM contacts_unsubscriber WHERE id IN (SELECT id FROM ({MISNAMED}) m)"


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0004_tag_names_unique_any_case"),
    ]

    operations = [
        migrations.RunSQL(RENAME_SQL, migrations.RunSQL.noop),
        migrations.RunSQL(DELETE_TWINS_SQL, migrations.RunSQL.noop),
    ]
