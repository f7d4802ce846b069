"""Provider credentials at rest: Fernet-encrypted JSON, masked wherever they are shown.

FIELD_ENCRYPTION_KEY holds one key or several separated by commas (newest first), so that a
key can be rotated: values encrypted with an older key still read, and are re-encrypted with the
newest on their next save.
"""

import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is not a valid Fernet key: {exc}") from None


def encrypt(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "Stored provider credentials cannot be decrypted with FIELD_ENCRYPTION_KEY (was the key changed?)."
        ) from None


def mask(secret: str) -> str:
    """Show just enough to recognise a secret: '••••••3f9a'. Short secrets are hidden entirely."""
    if not secret:
        return ""
    return "••••••" + (secret[-4:] if len(secret) >= 12 else "")


class EncryptedJSONField(models.TextField):
    """A dict stored as a Fernet token; the database never sees the clear text."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        return decrypt(value)

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(value) if value.lstrip().startswith("{") else decrypt(value)

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt(value or {})

    def value_to_string(self, obj):
        # Fixtures and dumpdata carry the token, never the clear text.
        return self.get_prep_value(self.value_from_object(obj))
