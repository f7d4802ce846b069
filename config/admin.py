"""The admin's API tokens page (DRF's `rest_framework.authtoken`), which showed every token's key in full to whoever
may view tokens: a key is a password for the API. Keys are masked here (`3f9a••••`) in the list (which neither filters
by a key nor opens as a popup: either would give keys away), on the change and delete pages, in messages, on a user's
delete page and in the admin's history (which keeps an object's name for good: the entries written before keys were
masked are masked by config/migrations/0001); the full key is shown once, in the message right after a person
creates it. Creating and revoking (deleting) tokens work as before.

Also the whole site's way of showing nothing (below).

(`config` is an installed app for this module to be found by the admin's autodiscovery after DRF's.)
"""

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models.constants import LOOKUP_SEP
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy


def masked_key(key: str | None) -> str:
    """Enough of a key to tell two apart, never enough to use it."""
    return f"{key[:4]}••••" if key else ""


# DRF's Token names itself by its key, which every admin page, message and history entry about it would print (a
# user's delete page too, listing the token that goes with the user). Nothing reads a key through str(): DRF and
# Herald use `.key`.
Token.__str__ = lambda token: masked_key(token.key)

# Nothing to show reads as one dash on every admin page: Django's own "-" for an empty field, and Herald's columns'
# "–" (no progress yet), wrote it two ways side by side.
admin.site.empty_value_display = "–"

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DrfTokenAdmin):
    list_display = ("key_masked", "user", "created")

    @admin.display(description="key")
    def key_masked(self, token: TokenProxy) -> str:
        return masked_key(token.key)

    def lookup_allowed(self, lookup, value, request):
        """No filtering by the key (`?key__startswith=3f9a1`, or `?pk__…`: the key is the primary key): whether a
        token is listed would spell any key out, a character at a time."""
        if lookup.split(LOOKUP_SEP)[0] in ("key", "pk"):
            return False
        return super().lookup_allowed(lookup, value, request)

    def changelist_view(self, request, extra_context=None):
        """Never as a popup: a popup's list writes each row's primary key, the full key, for the page that opened it
        to read (`data-popup-opener`); nothing chooses a token in a popup."""
        if IS_POPUP_VAR in request.GET or TO_FIELD_VAR in request.GET:
            raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"The new token of {obj.user}: {obj.key} — copy it now; it will not be shown again.",
            messages.WARNING,
        )
        return super().response_add(request, obj, post_url_continue)


User = get_user_model()


class UserAdmin(type(admin.site.get_model_admin(User))):
    """The users' admin as it was registered, without filtering users by their token (`?auth_token__key__startswith=`,
    `?auth_token=`): whoever may view users would spell any API key out, a character at a time."""

    def lookup_allowed(self, lookup, value, request=None):
        if "auth_token" in lookup.split(LOOKUP_SEP):
            return False
        return super().lookup_allowed(lookup, value, request)


admin.site.unregister(User)
admin.site.register(User, UserAdmin)
