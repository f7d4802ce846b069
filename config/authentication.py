"""The API's token authentication (kept apart from config/api.py: DRF imports it with its settings)."""

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, for a key with a null character too: looked up as it came, it was a 500 (PostgreSQL's text takes no
    NUL); it is an invalid token like any other, a 401."""

    def authenticate_credentials(self, key):
        if "\x00" in key:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
