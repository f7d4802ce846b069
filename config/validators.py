"""Validators shared by models, forms and serializers."""

from django.core.exceptions import ValidationError

NUL_MESSAGE = "Null characters are not allowed."


def reject_nul_characters(value) -> None:
    """Refuse a NUL character anywhere in a JSON value (a string, a key, or nested in lists and objects).

    PostgreSQL's jsonb cannot store one (`unsupported Unicode escape sequence`), so without this check the
    write fails with a 500 instead of a 400 naming the field. Text fields already refuse it (Django's
    ProhibitNullCharactersValidator, same message)."""
    pending = [value]
    while pending:  # a loop, not recursion: the depth of the value is the client's to choose
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError(NUL_MESSAGE, code="null_characters_not_allowed")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
