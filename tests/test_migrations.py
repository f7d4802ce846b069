"""The models and the migrations agree: no change is waiting for a migration; a migration that needs data put
right first says so in words."""

import importlib

import pytest

from django.apps import apps
from django.core.management import call_command
from django.db import connection

from contacts.models import Tag


@pytest.mark.django_db
def test_no_migration_is_missing():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_tag_names_that_differ_only_in_case_are_named_before_the_constraint_is_added():
    check = importlib.import_module("contacts.migrations.0004_tag_names_unique_any_case")
    with connection.cursor() as cursor:  # the database as it was before the migration (rolled back after)
        cursor.execute("DROP INDEX tag_name_unique_any_case")
    Tag.objects.bulk_create(
        [Tag(name="VIP"), Tag(name="vip"), Tag(name="news"), Tag(name="Spring"), Tag(name="spring")]
    )

    with pytest.raises(RuntimeError) as refused:
        check.refuse_names_that_differ_only_in_case(apps, None)

    assert str(refused.value) == (
        "Tag names must now differ in more than case. Rename or merge these tags first: Spring / spring; VIP / vip"
    )
