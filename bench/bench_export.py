"""A campaign's message export (the admin's "Export … (CSV)"), downloaded to the end.

    .venv/bin/python -m bench.bench_export --rows 300000

Not one of the issue's six (`make bench` does not run it): it measures the page staff wait on when they take a large
campaign's messages to a spreadsheet. One campaign of N messages (a tenth rejected with a vendor code, so that the
file has failures to explain) is written in SQL, then its export is read to its last byte through the admin's view
as a signed-in superuser (Django's test client in this process: every row selected, formatted, checked for
formulas and written in the response's pieces, as gunicorn would send them).

Floor: PostgreSQL writing the same columns of the same rows as CSV itself (`COPY (SELECT …) TO STDOUT`), read to
the end by psycopg: the export without any of Herald's Python (no failure meanings, no formula check).
"""

from __future__ import annotations

import argparse

from bench.common import Result, Timer, add_scale_arguments, database_name, sql, standalone, vacuum_analyze

FULL = 300_000


def campaign_with_messages(count: int):
    """A completed Octopush campaign with `count` messages (and the range of ids launch and prepare record)."""
    from campaigns.models import Campaign
    from providers.models import ProviderAccount

    account = ProviderAccount.objects.create(
        kind="octopush", name="export", base_url="http://127.0.0.1:9", credentials={}, channels=["sms"]
    )
    campaign = Campaign.objects.create(name="export", account=account, text="Hello {first_name}", state="completed")
    first = sql("SELECT coalesce(pg_sequence_last_value('campaigns_message_id_seq'), 0) + 1")[0][0]
    sql(
        """INSERT INTO campaigns_message (campaign_id, account_id, channel, address, status, error_code, reason,
                  provider_message_id, parts, encoding, cost, created_at, submitted_at, final_at, text)
           SELECT %(campaign)s, %(account)s, 'sms', '+9198' || lpad(n::text, 8, '0'),
                  CASE WHEN n %% 10 = 0 THEN 'rejected' ELSE 'delivered' END,
                  CASE WHEN n %% 10 = 0 THEN '301' ELSE '' END, '', 'oct-' || n, 1, 'gsm7', 0.012,
                  now() - interval '1 hour', now() - interval '59 minutes', now() - interval '58 minutes',
                  'Hello Priya, your order ' || n || ' has shipped. Track it at https://example.com/t/' || n
           FROM generate_series(1, %(count)s) n""",
        {"campaign": campaign.pk, "account": account.pk, "count": count},
    )
    last = sql("SELECT pg_sequence_last_value('campaigns_message_id_seq')")[0][0]
    Campaign.objects.filter(pk=campaign.pk).update(message_ids_from=first, message_ids_to=last)
    vacuum_analyze("campaigns_message")
    return campaign


def export_read(campaign) -> tuple[int, int, int]:
    """(bytes, lines, pieces) of the admin's export of `campaign`, read to the end as a browser would."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    user = get_user_model().objects.create_superuser("bench-export", "bench@example.com", None)
    client = Client()
    client.force_login(user)
    response = client.get(reverse("admin:campaigns_campaign_export", args=[campaign.pk]))
    assert response.status_code == 200, response.status_code
    size = lines = pieces = 0
    for piece in response.streaming_content:
        size, lines, pieces = size + len(piece), lines + piece.count(b"\n"), pieces + 1
    return size, lines, pieces


def floor_read(campaign) -> int:
    """Bytes of the same columns of the same rows as CSV, written by PostgreSQL (COPY … TO STDOUT)."""
    from django.db import connection

    columns = (
        "id, address, contact_id, status, reason, error_code, provider_message_id, external_ref, parts, encoding, "
        "cost, created_at, submitted_at, final_at, text"
    )
    statement = (
        f"COPY (SELECT {columns} FROM campaigns_message WHERE campaign_id = {int(campaign.pk)} ORDER BY id) "
        "TO STDOUT (FORMAT csv, HEADER)"
    )
    size = 0
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for block in copy:
            size += len(block)
    return size


def run(*, rows: int, scale: float, args=None) -> Result:
    result = Result("export", "A campaign's message export (admin CSV), read to the end", rows, scale)
    with Timer() as setup:
        campaign = campaign_with_messages(rows)
    floor_read(campaign)  # warm: both reads find the table's pages in memory
    with Timer() as floor:
        floor_size = floor_read(campaign)
    with Timer() as export:
        size, lines, pieces = export_read(campaign)
    assert lines == rows + 1, f"the export wrote {lines - 1:,} rows of {rows:,}"
    floor_rate, rate = rows / floor.seconds, rows / export.seconds
    result.add("export: admin CSV, read to the end", rate, "rows/s", floor_rate, headline=True)
    result.add("  seconds", export.seconds, "s")
    result.add("floor: COPY … TO STDOUT (csv) of the same rows", floor_rate, "rows/s")
    result.details = {
        "export_seconds": export.seconds,
        "export_bytes": size,
        "export_pieces": pieces,
        "floor_seconds": floor.seconds,
        "floor_bytes": floor_size,
        "setup_seconds": setup.seconds,
        "database": database_name(),
    }
    result.notes.append(
        f"{rows:,} messages, {size / 1e6:.1f} MB in {pieces:,} pieces; the floor wrote {floor_size / 1e6:.1f} MB"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "messages")
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL)
