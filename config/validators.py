"""Validators shared by models, forms and serializers."""

from django.core.exceptions import ValidationError

NUL_MESSAGE = "Null characters are not allowed."


MAX_JSON_DEPTH = 64
DEPTH_MESSAGE = f"Nested deeper than {MAX_JSON_DEPTH} levels."


def validate_storable_json(value) -> None:
    """Refuse a NUL character anywhere in a JSON value (a string, a key, or nested in lists and objects), and a
    value nested deeper than MAX_JSON_DEPTH.

    PostgreSQL's jsonb cannot store a NUL (`unsupported Unicode escape sequence`), and a value nested near
    Python's recursion limit parses but overflows the stack when it is encoded for the database: without this
    check either write fails with a 500 instead of a 400 naming the field. Text fields already refuse a NUL
    (Django's ProhibitNullCharactersValidator, same message)."""
    pending = [(value, 0)]
    while pending:  # a loop, not recursion: the depth of the value is the client's to choose
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValidationError(DEPTH_MESSAGE, code="nested_too_deep")
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError(NUL_MESSAGE, code="null_characters_not_allowed")
        elif isinstance(item, dict):
            pending.extend((key, depth + 1) for key in item)
            pending.extend((member, depth + 1) for member in item.values())
        elif isinstance(item, list | tuple):
            pending.extend((member, depth + 1) for member in item)
