"""The admin's API tokens page (DRF's `rest_framework.authtoken`), which showed every token's key in full to whoever
may view tokens: a key is a password for the API. Keys are masked here (`3f9a••••`) in the list, on the change and
delete pages, in messages, on a user's delete page and in the admin's history (which keeps an object's name for good); the full key is shown
once, in the message right after a person creates it. Creating and revoking (deleting) tokens work as before.

(`config` is an installed app for this module to be found by the admin's autodiscovery after DRF's.)
"""

from django.contrib import admin, messages
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy


def masked_key(key: str | None) -> str:
    """Enough of a key to tell two apart, never enough to use it."""
    return f"{key[:4]}••••" if key else ""


# DRF's Token names itself by its key, which every admin page, message and history entry about it would print (a
# user's delete page too, listing the token that goes with the user). Nothing reads a key through str(): DRF and
# Herald use `.key`.
Token.__str__ = lambda token: masked_key(token.key)

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DrfTokenAdmin):
    list_display = ("key_masked", "user", "created")

    @admin.display(description="key")
    def key_masked(self, token: TokenProxy) -> str:
        return masked_key(token.key)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"The new token of {obj.user}: {obj.key} — copy it now; it will not be shown again.",
            messages.WARNING,
        )
        return super().response_add(request, obj, post_url_continue)
