"""herald_status_rank(status): the order of canonical statuses, so that SQL never moves a message backwards.

Generated from providers.backends.base.STATUS_RANK at the time of writing; a test checks they agree.
"""

from django.db import migrations

RANKS = {
    "pending": 0, "queued": 1, "submitted": 2, "sent": 3, "delivered": 4, "rejected": 4, "undelivered": 4,
    "expired": 4, "failed": 4, "read": 5, "clicked": 6, "suppressed": 100,
}  # fmt: skip

CASES = " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in RANKS.items())
CREATE = f"""
CREATE OR REPLACE FUNCTION herald_status_rank(status text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE status {CASES} ELSE -1 END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_frame_recovery_fields")]

    operations = [migrations.RunSQL(CREATE, "DROP FUNCTION IF EXISTS herald_status_rank(text);")]
