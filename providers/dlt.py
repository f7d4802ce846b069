"""DLT templates as pure functions: a body's variables, rendering, and checking a text against a body.

India's DLT scrubbing rejects a message whose text does not match its registered template (the
fixed parts verbatim) or whose variables are longer than 30 characters (MOBtexting error 783), so
Herald checks both before sending.

Two ways of writing a variable:
- `{#var#}` as DLT registers them (also the newer typed slots `{#numeric#}`, `{#url#}`…): positional
  slots. A slot name used once is keyed by that name ("var"); used several times, its occurrences
  are keyed in order with a number ("var1", "var2"…), because each is a value of its own.
- `{{name}}` as MOBtexting writes them: named; every occurrence of a name takes the same value.

Matching is anchored at both ends, the fixed parts are compared literally (regex-escaped), and each
variable is non-greedy and at most 30 characters. A variable may contain any character, line breaks
included: DLT restricts a variable's length, not its content, and the fixed text around it decides
where it ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError

MAX_VARIABLE_LENGTH = 30
PLACEHOLDER = re.compile(r"\{#\s*(?P<slot>\w+)\s*#\}|\{\{\s*(?P<named>\w+)\s*\}\}")
LEFTOVER = re.compile(r"\{#|#\}|\{\{|\}\}")


@dataclass(frozen=True)
class ParsedBody:
    fixed: list[str]  # the literal parts, one more than there are variables
    keys: list[str]  # the key of each variable occurrence, in order

    @property
    def variables(self) -> list[str]:
        return list(dict.fromkeys(self.keys))


def template_parse(body: str) -> ParsedBody:
    """Split a body into its fixed parts and the keys of its variable occurrences."""
    matches = list(PLACEHOLDER.finditer(body))
    slot_uses: dict[str, int] = {}
    for match in matches:
        if match["slot"]:
            slot_uses[match["slot"]] = slot_uses.get(match["slot"], 0) + 1
    fixed, keys, seen, start = [], [], {}, 0
    for match in matches:
        fixed.append(body[start : match.start()])
        start = match.end()
        if match["named"]:
            keys.append(match["named"])
        elif slot_uses[match["slot"]] == 1:
            keys.append(match["slot"])
        else:
            seen[match["slot"]] = seen.get(match["slot"], 0) + 1
            keys.append(f"{match['slot']}{seen[match['slot']]}")
    fixed.append(body[start:])
    return ParsedBody(fixed=fixed, keys=keys)


def template_variables(body: str) -> list[str]:
    """The keys a body's variables are filled by, each once, in order of appearance."""
    return template_parse(body).variables


def template_check_body(body: str) -> list[str]:
    """Refuse a body with a half-written variable ("{#var", "{{name}"); returns its variables."""
    if not body or not body.strip():
        raise ValidationError({"body": "The template body cannot be empty."})
    leftover = LEFTOVER.search(PLACEHOLDER.sub("", body))
    if leftover:
        raise ValidationError(
            {"body": f"Unclosed or malformed variable near {body[max(0, leftover.start() - 10) :][:30]!r}: "
                     "write variables as {#var#} or {{name}}."}
        )  # fmt: skip
    return template_variables(body)


def template_render(body: str, values: Mapping[str, object] | Sequence[object]) -> str:
    """Fill a body's variables from `values` (by key, or a list in the order of `template_variables`).

    Raises ValidationError({"values": …}) naming a variable that has no value, one that is not a string or a
    number, or one over 30 characters.
    """
    parsed = template_parse(body)
    if isinstance(values, Sequence) and not isinstance(values, str):
        if len(values) > len(parsed.variables):
            raise ValidationError(
                {"values": f"{len(values)} values given; the template has {len(parsed.variables)} variables."}
            )
        values = dict(zip(parsed.variables, values, strict=False))
    missing = [key for key in parsed.variables if values.get(key) is None]
    if missing:
        raise ValidationError(
            {"values": f"No value for the variable{'s' if len(missing) > 1 else ''} {_names(missing)}."}
        )
    not_text = [
        key
        for key in parsed.variables
        if isinstance(values[key], bool) or not isinstance(values[key], str | int | float)
    ]
    if not_text:
        raise ValidationError(
            {"values": f"The value of {_names(not_text)} is not text: give a string or a number for each variable."}
        )
    filled = {key: str(values[key]) for key in parsed.variables}
    for key, value in filled.items():
        if len(value) > MAX_VARIABLE_LENGTH:
            raise ValidationError(
                {"values": f"The value of {key!r} is {len(value)} characters long; "
                           f"DLT allows at most {MAX_VARIABLE_LENGTH}."}
            )  # fmt: skip
    pieces = [parsed.fixed[0]]
    for key, fixed in zip(parsed.keys, parsed.fixed[1:], strict=True):
        pieces += [filled[key], fixed]
    return "".join(pieces)


def template_match(body: str, text: str) -> dict[str, str]:
    """The variable values that make `text` from `body`, or ValidationError({"text": …}) saying why not.

    The error says where the text departs from the template's fixed parts, or which variable would
    be longer than 30 characters (that is the first thing DLT scrubbing rejects).
    """
    parsed = template_parse(body)
    bounded = re.fullmatch(_pattern(parsed, limit=MAX_VARIABLE_LENGTH), text, re.DOTALL)
    if bounded:
        return _values(parsed, bounded)
    unbounded = re.fullmatch(_pattern(parsed), text, re.DOTALL)
    if unbounded:
        values = _values(parsed, unbounded)
        key, value = next((k, v) for k, v in values.items() if len(v) > MAX_VARIABLE_LENGTH)
        raise ValidationError(
            {"text": f"The variable {key!r} would be {len(value)} characters ({_excerpt(value)}); "
                     f"DLT allows at most {MAX_VARIABLE_LENGTH}."}
        )  # fmt: skip
    raise ValidationError({"text": _departure(parsed, text)})


def _names(keys: list[str]) -> str:
    return ", ".join(repr(key) for key in keys)


def _excerpt(value: str, size: int = 40) -> str:
    return repr(value if len(value) <= size else value[:size] + "…")


def _pattern(parsed: ParsedBody, upto: int | None = None, limit: int | None = None) -> str:
    """A regex for the body's first `upto` fixed parts (all by default) with the variables between them."""
    upto = len(parsed.fixed) if upto is None else upto
    variable = f".{{0,{limit}}}?" if limit is not None else ".*?"
    groups: dict[str, str] = {}
    parts = [re.escape(parsed.fixed[0])]
    for index, key in enumerate(parsed.keys[: upto - 1]):
        if key in groups:
            parts.append(f"(?P={groups[key]})")  # a named variable used twice holds the same value twice
        else:
            groups[key] = f"v{index}"
            parts.append(f"(?P<v{index}>{variable})")
        parts.append(re.escape(parsed.fixed[index + 1]))
    return "".join(parts)


def _values(parsed: ParsedBody, match: re.Match) -> dict[str, str]:
    first_index = {}
    for index, key in enumerate(parsed.keys):
        first_index.setdefault(key, index)
    return {key: match[f"v{index}"] for key, index in first_index.items()}


def _departure(parsed: ParsedBody, text: str) -> str:
    """Say in words where the text stops following the template."""
    head = parsed.fixed[0]
    if not text.startswith(head):
        at = next((i for i, (a, b) in enumerate(zip(head, text, strict=False)) if a != b), min(len(head), len(text)))
        found = _excerpt(text[at : at + 20]) if at < len(text) else "the end of the text"
        return (
            f"The text departs from the template at character {at + 1}: "
            f"expected {_excerpt(head[at : at + 20])}, found {found}."
        )
    matched_end = len(head)
    for upto in range(2, len(parsed.fixed) + 1):
        match = re.match(_pattern(parsed, upto=upto), text, re.DOTALL)
        if match is None:
            key, expected = parsed.keys[upto - 2], parsed.fixed[upto - 1]
            if key in parsed.keys[: upto - 2]:
                return f"The variable {key!r} is used twice in the template but holds two different values in the text."
            return (
                f"After the variable {key!r} (from character {matched_end + 1}) the text should "
                f"continue with {_excerpt(expected)}, which is not found."
            )
        matched_end = match.end()
    return f"The text goes on after the end of the template: {_excerpt(text[matched_end:])} is extra."
