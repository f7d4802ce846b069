"""The API's token authentication (kept apart from config/api.py: DRF imports it with its settings)."""

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, for a key with a null character too: looked up as it came, it was a 500 (PostgreSQL's text takes no
    NUL); it is an invalid token like any other, a 401. A key sent as `Bearer <key>` (what most HTTP clients and
    OpenAPI generators send for a token) is a 401 saying to write `Token`: DRF skipped the header, and its 401 said
    "Authentication credentials were not provided", though they were."""

    def authenticate(self, request):
        words = authentication.get_authorization_header(request).split()
        if len(words) == 2 and words[0].lower() == b"bearer":
            raise exceptions.AuthenticationFailed(
                'Send the token as "Authorization: Token <key>": this API takes the word Token, not Bearer.'
            )
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        if "\x00" in key:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
