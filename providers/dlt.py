"""DLT templates as pure functions: a body's variables, rendering, and checking a text against a body.

India's DLT scrubbing rejects a message whose text does not match its registered template (the
fixed parts verbatim) or whose variables are longer than 30 characters (MOBtexting error 783), so
Herald checks both before sending.

Two ways of writing a variable:
- `{#var#}` as DLT registers them (also the newer typed slots `{#numeric#}`, `{#url#}`…): positional
  slots. A slot name used once is keyed by that name ("var"); used several times, its occurrences
  are keyed in order with a number ("var1", "var2"…), because each is a value of its own.
- `{{name}}` as MOBtexting writes them: named; every occurrence of a name takes the same value.

Matching is anchored at both ends, the fixed parts are compared literally, and each variable is
non-greedy and at most 30 characters (as a regex would split the text, without its backtracking: `_split`). A variable may contain any character, line breaks
included: DLT restricts a variable's length, not its content, and the fixed text around it decides
where it ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

MAX_VARIABLE_LENGTH = 30
# A campaign's contact variables ({{first_name}}, {{city}}…), filled for each recipient (campaigns.rendering uses this
# one): in a campaign's text checked against a template, they stand inside its variables.
CONTACT_VARIABLE_RE = re.compile(r"\{\{\s*([\w.-]+)\s*\}\}")
PLACEHOLDER = re.compile(r"\{#\s*(?P<slot>\w+)\s*#\}|\{\{\s*(?P<named>\w+)\s*\}\}")
LEFTOVER = re.compile(r"\{#|#\}|\{\{|\}\}")


@dataclass(frozen=True)
class ParsedBody:
    fixed: list[str]  # the literal parts, one more than there are variables
    keys: list[str]  # the key of each variable occurrence, in order
    slots: list[str] = field(default_factory=list)  # each occurrence as the body writes it ("{#var#}")

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
    return ParsedBody(fixed=fixed, keys=keys, slots=[match[0] for match in matches])


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
        if problem := variable_too_long(key, value):
            raise ValidationError({"values": problem})
    return template_fill(parsed, filled)


def variable_too_long(key: str, value: str) -> str:
    """What DLT scrubbing says of a variable's value over 30 characters (MOBtexting 783), or ""."""
    if len(value) <= MAX_VARIABLE_LENGTH:
        return ""
    return f"The value of {key!r} is {len(value)} characters long; DLT allows at most {MAX_VARIABLE_LENGTH}."


def template_fill(parsed: ParsedBody, values: Mapping[str, str]) -> str:
    """The body with each variable replaced by its value, unchecked; one without a value keeps its slot as written."""
    pieces = [parsed.fixed[0]]
    for key, slot, fixed in zip(parsed.keys, parsed.slots, parsed.fixed[1:], strict=True):
        pieces += [values.get(key, slot), fixed]
    return "".join(pieces)


def template_match(body: str, text: str, *, max_length: int | None = MAX_VARIABLE_LENGTH) -> dict[str, str]:
    """The variable values that make `text` from `body`, or ValidationError({"text": …}) saying why not.

    The error says where the text departs from the template's fixed parts, or which variable would
    be longer than 30 characters (that is the first thing DLT scrubbing rejects). With `max_length` None the
    variables' lengths are not limited: a campaign's text whose variables hold {{first_name}}… is as long as each
    recipient's values make it, which the caller measures.
    """
    parsed = template_parse(body)
    budget = _Budget(MAX_SPLIT_STEPS if len(set(parsed.keys)) < len(parsed.keys) else None)
    try:
        if bounded := _split(parsed, text, budget, limit=max_length):
            return bounded[0]
        unbounded = _split(parsed, text, budget) if max_length is not None else None
        departure = None if unbounded else _departure(parsed, text, budget)
    except _OverBudget:
        raise ValidationError(
            {"text": "The text is too long to be checked against this template, whose named variables are used "
                     "more than once: there are too many ways to read it. Send a shorter text, or the template's "
                     "variables' values."}
        ) from None  # fmt: skip
    if unbounded:
        key, value = next((k, v) for k, v in unbounded[0].items() if len(v) > MAX_VARIABLE_LENGTH)
        raise ValidationError(
            {"text": f"The variable {key!r} would be {len(value)} characters ({_excerpt(value)}); "
                     f"DLT allows at most {MAX_VARIABLE_LENGTH}."}
        )  # fmt: skip
    raise ValidationError({"text": departure})


def template_slots(body: str, text: str) -> dict[str, str]:
    """template_match for a campaign's text, whose variables may hold contact variables ("Mr {{first_name}}"): such a
    variable is as long as each recipient's values make it, so it is not held to 30 characters as written (the
    campaign's estimate measures it for each recipient); its fixed characters alone over 30 are refused."""
    if not CONTACT_VARIABLE_RE.search(text):
        return template_match(body, text)
    slots = template_match(body, text, max_length=None)
    for key, slot in slots.items():
        fixed = len(CONTACT_VARIABLE_RE.sub("", slot))
        if fixed <= MAX_VARIABLE_LENGTH:
            continue
        if CONTACT_VARIABLE_RE.search(slot):
            raise ValidationError(
                {"text": f"The variable {key!r} is {fixed} characters ({_excerpt(slot, 60)}) before its {{{{…}}}} are "
                         f"filled; DLT allows at most {MAX_VARIABLE_LENGTH}."}
            )  # fmt: skip
        raise ValidationError(
            {"text": f"The variable {key!r} would be {fixed} characters ({_excerpt(slot)}); "
                     f"DLT allows at most {MAX_VARIABLE_LENGTH}."}
        )  # fmt: skip
    return slots


# How many splits of a text may be tried, in all, to check it against a template whose named variables are used more
# than once: each value bound changes what may follow, so such a template may be read in more ways than a text has
# characters, and a long text is refused rather than searched for minutes. Any other template is read in at most
# (variables × characters × 31) steps, and a text that follows a template closely in a few.
MAX_SPLIT_STEPS = 500_000


class _OverBudget(Exception):
    pass


class _Budget:
    def __init__(self, steps: int | None):
        self.steps = steps  # None: no limit

    def spend(self) -> None:
        if self.steps is not None:
            self.steps -= 1
            if self.steps < 0:
                raise _OverBudget


def _names(keys: list[str]) -> str:
    return ", ".join(repr(key) for key in keys)


def _excerpt(value: str, size: int = 40) -> str:
    return repr(value if len(value) <= size else value[:size] + "…")


def _split(
    parsed: ParsedBody,
    text: str,
    budget: _Budget,
    *,
    upto: int | None = None,
    limit: int | None = None,
    whole: bool = True,
) -> tuple[dict[str, str], int] | None:
    """How the body's first `upto` fixed parts (all by default), with its variables between them, each at most
    `limit` characters, make the text (its start only, unless `whole`): the variables' values and where the last
    fixed part ends; or None. Each variable is tried shortest first, as a non-greedy regex would, and a named
    variable used again holds the same value.

    A regex (`.*?` between the fixed parts) tried every combination of splits before saying no: a text that follows
    a template of four variables nearly, a few hundred characters long, held its request for minutes. Here a place
    that failed is remembered (with the values it depends on), so the text is read a bounded number of times.
    """
    upto = len(parsed.fixed) if upto is None else upto
    fixed, keys = parsed.fixed[:upto], parsed.keys[: upto - 1]
    if not text.startswith(fixed[0]):
        return None
    # What a failure from variable j on depends on: where it starts, and the values of the named variables bound
    # before it that it or a later one uses again.
    reused = [sorted(set(keys[:j]) & set(keys[j:])) for j in range(len(keys) + 1)]
    failed: set[tuple] = set()
    values: dict[str, str] = {}

    def ends(j: int, at: int):
        """Where variable j, starting at `at`, may end: the next fixed part follows, in order, shortest first."""
        key, after = keys[j], fixed[j + 1]
        if key in values:
            end = at + len(values[key])
            candidates = [end] if text.startswith(values[key], at) else []
        elif whole and j == len(keys) - 1:  # the last variable: the text ends with the last fixed part
            candidates = [len(text) - len(after)]
        else:
            candidates = _found_from(text, after, at)
        stop = len(text) if limit is None else at + limit
        for end in candidates:
            if end > stop:
                return
            if end >= at and text.startswith(after, end):
                yield end

    def split_from(j: int, at: int) -> int | None:
        if j == len(keys):
            return at if at == len(text) or not whole else None
        state = (j, at, *(values[key] for key in reused[j]))
        if state in failed:
            return None
        key, bound = keys[j], keys[j] in values
        # Without a limit, the next variable, used once, may end from a later start wherever it may from an earlier
        # one: what follows failing after one end of this one fails after every later end (unless this one's value
        # is used again).
        monotonic = limit is None and j + 1 < len(keys) and keys.count(keys[j + 1]) == 1 and key not in keys[j + 1 :]
        for end in ends(j, at):
            budget.spend()
            if not bound:
                values[key] = text[at:end]
            if (found := split_from(j + 1, end + len(fixed[j + 1]))) is not None:
                return found
            if monotonic:
                break
        if not bound:
            values.pop(key, None)
        failed.add(state)
        return None

    end = split_from(0, len(fixed[0]))
    return None if end is None else (values, end)


def _found_from(text: str, part: str, at: int):
    """Where `part` is found in the text from `at` on, in order."""
    found = text.find(part, at)
    while found != -1:
        yield found
        found = text.find(part, found + 1)


def _departure(parsed: ParsedBody, text: str, budget: _Budget) -> str:
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
        prefix = _split(parsed, text, budget, upto=upto, whole=False)
        if prefix is None:
            key, expected = parsed.keys[upto - 2], parsed.fixed[upto - 1]
            if key in parsed.keys[: upto - 2]:
                return f"The variable {key!r} is used twice in the template but holds two different values in the text."
            return (
                f"After the variable {key!r} (from character {matched_end + 1}) the text should "
                f"continue with {_excerpt(expected)}, which is not found."
            )
        matched_end = prefix[1]
    return f"The text goes on after the end of the template: {_excerpt(text[matched_end:])} is extra."
