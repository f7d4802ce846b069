"""The admin's API tokens page never shows a key in full, except once, to the person who just created it; staff
still create and revoke tokens there."""

import pytest

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.authtoken.models import Token, TokenProxy

pytestmark = pytest.mark.django_db

TOKENS = "/admin/authtoken/tokenproxy/"


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("root", password="x")
    client.force_login(user)
    return client


@pytest.fixture
def token():
    return Token.objects.create(user=get_user_model().objects.create_user("integrator", password="x"))


def test_the_token_list_and_pages_show_the_key_masked(staff, token):
    pages = {
        "list": staff.get(TOKENS),
        "change": staff.get(f"{TOKENS}{token.user_id}/change/"),
        "delete": staff.get(f"{TOKENS}{token.user_id}/delete/"),
        "user's delete": staff.get(f"/admin/auth/user/{token.user_id}/delete/"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert token.key not in page.content.decode(), f"the {name} page shows the key"
    assert f"{token.key[:4]}••••" in pages["list"].content.decode()
    assert "integrator" in pages["list"].content.decode()


def test_a_new_token_is_shown_once_to_who_created_it_and_then_masked(staff):
    user = get_user_model().objects.create_user("newcomer", password="x")

    created = staff.post(f"{TOKENS}add/", {"user": user.pk}, follow=True)

    key = Token.objects.get(user=user).key
    assert created.status_code == 200
    assert created.content.decode().count(key) == 1, "the new key is shown, once"
    assert "it will not be shown again" in created.content.decode()
    again = staff.get(TOKENS).content.decode() + staff.get("/admin/").content.decode()  # the list, recent actions
    assert key not in again and f"{key[:4]}••••" in again
    assert not LogEntry.objects.filter(object_repr__contains=key).exists()


def test_staff_revoke_a_token(staff, token):
    answer = staff.post(f"{TOKENS}{token.user_id}/delete/", {"post": "yes"})

    assert answer.status_code == 302
    assert not Token.objects.filter(key=token.key).exists()


def test_whoever_may_view_tokens_gets_no_key_through_the_lists_filters_or_popup(client, token):
    """?_popup=1 wrote each row's primary key, the key, in full (data-popup-opener); ?key__startswith= answered
    whether a key begins so, which spells any key out in a few hundred requests."""
    viewer = get_user_model().objects.create_user("auditor", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tokenproxy"))
    client.force_login(viewer)
    assert client.get(TOKENS).status_code == 200
    for query in ({"_popup": "1"}, {"_popup": "1", "_to_field": "key"}):
        page = client.get(TOKENS, query)
        assert token.key not in page.content.decode() and page.status_code == 403, query
    for lookup in ("key__startswith", "pk__startswith", "key__gt", "user__auth_token__key__startswith"):
        right, wrong = (client.get(TOKENS, {lookup: prefix}) for prefix in (token.key[:5], "zzzzz"))
        assert right.status_code == wrong.status_code == 400, lookup


def test_whoever_may_view_users_cannot_filter_them_by_their_token(client, token):
    """?auth_token__key__startswith= on the user list told whether a user's key begins so (Django allows a lookup
    through one relation), spelling any key out; the users' list still filters as before."""
    viewer = get_user_model().objects.create_user("auditor", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(viewer)
    for lookup in ("auth_token__key__startswith", "auth_token__startswith", "auth_token"):
        right, wrong = (client.get("/admin/auth/user/", {lookup: value}) for value in (token.key[:5], "zzzzz"))
        assert right.status_code == wrong.status_code == 400, lookup
    listed = client.get("/admin/auth/user/", {"is_staff__exact": "1"}).context["cl"].result_list
    assert [user.username for user in listed] == ["auditor"]


def test_history_written_before_keys_were_masked_shows_them_masked_once_migrated(staff, token):
    """The admin's history keeps an object's name for good, and a token was named by its key in full: entries
    written before keys were masked showed them to whoever reads a token's history or the admin's recent actions.
    Migrating masks them: the name, a mention of it in the change message, and the id of an entry about
    `authtoken.Token` itself, whose primary key is the key."""
    root, revoked = get_user_model().objects.get(username="root"), Token.generate_key()
    proxy, concrete = (
        ContentType.objects.get_for_model(model, for_concrete_model=False) for model in (TokenProxy, Token)
    )
    MigrationExecutor(connection).migrate([("config", None)])  # as before the migration (rolled back after the test)
    LogEntry.objects.bulk_create(  # as the admin wrote them then: a token named by its key
        [
            LogEntry(user=root, content_type=proxy, object_id=str(token.user_id), object_repr=token.key,
                     action_flag=ADDITION, change_message='[{"added": {}}]'),
            LogEntry(user=root, content_type=proxy, object_id="999", object_repr=revoked, action_flag=DELETION),
            LogEntry(user=root, content_type=concrete, object_id=token.key, object_repr=token.key, action_flag=CHANGE,
                     change_message=f'[{{"changed": {{"name": "token", "object": "{token.key}", "fields": ["user"]}}}}]'),
            LogEntry(user=root, content_type=proxy, object_id="7", object_repr="3f9a••••", action_flag=CHANGE),
            LogEntry(user=root, content_type=ContentType.objects.get_for_model(root), object_id=str(root.pk),
                     object_repr="root", action_flag=CHANGE, change_message='[{"changed": {"fields": ["Email"]}}]'),
        ]
    )  # fmt: skip

    MigrationExecutor(connection).migrate([("config", "0001_mask_token_keys_in_admin_history")])

    pages = staff.get(f"{TOKENS}{token.user_id}/history/").content.decode() + staff.get("/admin/").content.decode()
    assert token.key not in pages and revoked not in pages
    assert f"{token.key[:4]}••••" in pages and f"{revoked[:4]}••••" in pages
    entries = {(entry.content_type_id, entry.object_id): entry for entry in LogEntry.objects.all()}
    masked = f"{token.key[:4]}••••"
    assert entries[concrete.pk, masked].object_repr == masked  # about Token itself: its id was the key
    assert entries[concrete.pk, masked].get_change_message() == f"Changed user for token “{masked}”."
    assert entries[proxy.pk, str(token.user_id)].object_repr == masked  # a user's id: the token's history finds it
    assert entries[proxy.pk, "999"].object_repr == f"{revoked[:4]}••••"
    assert entries[proxy.pk, "7"].object_repr == "3f9a••••"  # masked already: as it was
    assert entries[ContentType.objects.get_for_model(root).pk, str(root.pk)].object_repr == "root"  # no token's
