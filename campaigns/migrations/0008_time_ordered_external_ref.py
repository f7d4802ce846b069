"""Messages' external_ref becomes time-ordered (UUID version 7), made in the database by herald_time_ordered_uuid().

gen_random_uuid() reads the operating system's random source once per call where PostgreSQL is built without
OpenSSL (as the embedded one is): 6 µs a call, 6 s of a million-message materialisation, and its random order
scatters every frame's references over the whole unique index. The reference is no secret (webhooks are
authenticated by their URL and signature), so PostgreSQL's own generator fills the random bits; the unique
index still guarantees that no two messages share one.
"""

import campaigns.models
from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION herald_time_ordered_uuid() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    SELECT encode(
        -- 48 bits of milliseconds, version 7, 12 random bits
        int8send(((extract(epoch FROM clock_timestamp()) * 1000)::bigint << 16) | 28672 | (random() * 4095)::int)
        -- variant 10, 62 random bits
        || int8send(-9223372036854775808 | ((random() * 2147483647)::bigint << 31) | (random() * 2147483647)::bigint),
        'hex')::uuid
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0007_message_without_db_foreign_keys")]

    operations = [
        migrations.RunSQL(CREATE, "DROP FUNCTION IF EXISTS herald_time_ordered_uuid();"),
        migrations.AlterField(
            model_name="message",
            name="external_ref",
            field=models.UUIDField(
                db_default=models.Func(function="herald_time_ordered_uuid", output_field=models.UUIDField()),
                default=campaigns.models.time_ordered_uuid,
                editable=False,
                help_text="Herald's id for this message, sent to the provider wherever it takes one.",
                unique=True,
            ),
        ),
    ]
