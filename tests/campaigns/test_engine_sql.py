"""SQL pieces of the engine: the rank function agrees with the backends' STATUS_RANK."""

import pytest

from django.db import connection

from providers.backends.base import STATUS_RANK, Status


@pytest.mark.django_db
def test_herald_status_rank_agrees_with_status_rank():
    with connection.cursor() as cursor:
        cursor.execute("SELECT s, herald_status_rank(s) FROM unnest(%s::text[]) s", [[str(s) for s in Status]])
        ranks = dict(cursor.fetchall())
    assert ranks == {str(status): rank for status, rank in STATUS_RANK.items()}
