"""What keeps a record from being deleted, counted rather than loaded.

Django's delete collects every row that protects the record (a PROTECT foreign key) to name them: for a provider
account, every one of its messages, millions of them. `protected_users` asks each protecting table instead for how
many rows (up to a bound, through its index) and three to name; `used_by_text` words either for the API's 409 and
the admin's delete page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.db.models import ProtectedError

MOST = 10_000  # counted exactly up to this many; beyond, "over 10,000"


@dataclass(frozen=True)
class Users:
    """`count` rows of `model` protect the record (MOST + 1 meaning more than MOST); `sample` names up to three."""

    model: type[models.Model]
    count: int
    sample: list

    def __str__(self) -> str:
        meta = self.model._meta
        noun = meta.verbose_name if self.count == 1 else meta.verbose_name_plural
        many = counted_text(self.count)
        names = ", ".join(str(obj) for obj in self.sample[:3]) + (", …" if self.count > 3 else "")
        return f"{many} {noun} ({names})"


def protected_users(obj: models.Model) -> list[Users]:
    """The rows that keep `obj` from being deleted, by model, each counted up to MOST + 1 (two small queries a
    protecting table)."""
    users = []
    for relation in obj._meta.get_fields(include_hidden=True):  # hidden: a foreign key with related_name "+"
        if not (
            relation.auto_created and not relation.concrete and getattr(relation, "on_delete", None) is models.PROTECT
        ):
            continue
        rows = relation.related_model._base_manager.filter(**{relation.field.name: obj})
        count = rows[: MOST + 1].count()
        if count:
            users.append(Users(relation.related_model, count, list(rows.order_by()[:3])))
    return sorted(users, key=lambda u: str(u.model._meta.verbose_name))


def deleted_with(objs: list[models.Model]) -> dict[type[models.Model], int]:
    """What goes with `objs` (their CASCADE relations, one level), by model, counted up to MOST + 1 each: for a
    delete page's summary, in place of Django's list of every row, which loads them all (an account's delivery
    reports nobody matched, for one)."""
    counts: dict[type[models.Model], int] = {}
    for relation in objs[0]._meta.get_fields(include_hidden=True) if objs else ():
        if not (
            relation.auto_created and not relation.concrete and getattr(relation, "on_delete", None) is models.CASCADE
        ):
            continue
        rows = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": objs})
        count = rows[: MOST + 1].count()
        if count:
            counts[relation.related_model] = counts.get(relation.related_model, 0) + count
    return counts


def counted_text(count: int) -> str:
    return f"over {MOST:,}" if count > MOST else f"{count:,}"


WAY_OUT = "delete or change them first"


def used_by_text(model: type[models.Model] | None, users: list[Users], way_out: str = WAY_OUT) -> str:
    """E.g. "This sender is used by 3 campaigns (Diwali sale, …); delete or change them first."."""
    this = f"This {model._meta.verbose_name}" if model is not None else "This object"
    return f"{this} is used by {' and '.join(map(str, users)) or 'other records'}; {way_out}."


class StillUsed(ProtectedError):
    """A delete refused because other records still use the object, with them counted (protected_users), and what
    to do instead (`way_out`)."""

    def __init__(self, obj: models.Model, users: list[Users], way_out: str = WAY_OUT):
        self.users = users
        self.way_out = way_out
        super().__init__(used_by_text(type(obj), users, way_out), {u for users_ in users for u in users_.sample})
