"""DLT templates imported from the DLT portal's csv export, on the contacts import machinery.

Columns: template id, header (the sender name; several may be listed, and a template may come on
several rows, one per header: the first row gives the template, every row its headers; a later row may
leave body and type blank, and what it gives must agree with the first row), type, body, and optionally
the template name and status. Templates are upserted by their DLT template id and linked to the SMS
senders whose name matches a header on the account given in options["account_id"], which the import
needs: a header names a sender of one DLT entity, and another account's sender of the same name (an
Octopush "Herald") is not registered for the template. A template that exists on another account is
left with its own senders. A header that names a sender the template may not carry (DLT's type rule: a
promotional, service P, sender carries promotional templates only, and a promotional template goes out through one
only; the template page's refusal, providers.services.dlt_template_sender_problem) is not linked, and its row is
in the error report: the template is imported all the same, so that the sender may be fixed later, and the row is
counted with the templates imported (created, updated, unchanged, or a duplicate for a later row), not invalid. Registered for
ContactImport kind "dlt_templates" by ProvidersConfig.ready(), so that contacts never imports providers.

A spreadsheet stores a 19-digit template id as a number and loses its last digits: export the ids
as text (the portal's csv does).
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from contacts.imports.base import STAGE, Importer, RowError
from contacts.imports.columns import canonical
from contacts.imports.engine import KeySet
from contacts.imports.readers import ROUNDED_NUMBER_REASON, reason_unless_rounded
from contacts.models import ContactImport
from providers import dlt
from providers.models import Channel, DltTemplate, ProviderAccount, Sender
from providers.selectors import dlt_kinds, provider_accounts_using_dlt
from providers.services import DLT_LINK_ALLOWED, dlt_refused_params, dlt_sender_refusals

TYPES = {
    "t": "T", "transactional": "T", "trans": "T",
    "p": "P", "promotional": "P", "promo": "P",
    "si": "SI", "service implicit": "SI", "service inferred": "SI",
    "se": "SE", "service explicit": "SE",
}  # fmt: skip
STATUSES = {  # the words the operators' DLT portals use; the pre-flight takes only an approved template
    "approved": "approved", "active": "approved", "accepted": "approved",
    "pending": "pending", "under review": "pending", "submitted": "pending", "in review": "pending",
    "pending for approval": "pending", "awaiting approval": "pending", "under process": "pending",
    "rejected": "rejected", "inactive": "rejected", "blocked": "rejected", "deactivated": "rejected",
    "blacklisted": "rejected", "suspended": "rejected", "expired": "rejected", "deleted": "rejected",
    "temporarily blocked": "rejected",
}  # fmt: skip
NOT_A_TYPE = "not a template type (transactional, promotional, SI or SE)"
TEMPLATE_ID = re.compile(r"[0-9A-Za-z._-]{1,32}")
HEADER_SEPARATORS = re.compile(r"[\s,;|/]+")
NAME_MAX = DltTemplate._meta.get_field("name").max_length
NOT_LINKED = "the template is imported, not linked to this sender"
ACCOUNT_WHY = "their headers are linked to that account's senders of those names"
NO_ACCOUNT = f"Choose the provider account the templates are registered on (account_id): {ACCOUNT_WHY}."
NO_ACCOUNT_CHOSEN = f"Choose the provider account the templates are registered on: {ACCOUNT_WHY}."  # on its field


def is_english(body: str) -> bool:
    """No letters beyond Latin (punctuation and currency signs such as ₹ do not count)."""
    return all(ord(ch) <= 0x024F or 0x2000 <= ord(ch) <= 0x20CF for ch in body)


class DltTemplateImporter(Importer):
    label = "DLT template"
    import_name = "DLT template import"
    reads_phones = False
    model = DltTemplate
    fields = ("template_id", "header", "type", "body", "name", "status")
    required = ("template_id", "body", "type")
    key_field = "template_id"
    key_words = "template id"  # a later row of a template that adds no header (one that does is not left out)
    mode_help = (
        "DLT templates already there are updated from the file, or with create only left as they are (the file's "
        "headers are linked to them either way)."
    )
    mapping_help = (
        'Optional: {"Template No": "template_id", "Entity Header": "header", "Remarks": ""}. Without it, columns '
        "named template id, header, template type, template content, template name and status… are recognised and "
        "the others are left out."
    )
    synonyms = {
        "template_id": ("template id", "templateid", "dlt template id", "content template id", "dlt id", "tid"),
        "header": ("headers", "header name", "sender", "sender id", "sender name", "senderid", "header id"),
        "type": ("template type", "content type", "message type"),
        "body": ("template", "template content", "content", "message", "template message", "template body", "text"),
        "name": ("template name", "title", "template title", "alias"),
        "status": ("template status", "approval status"),
    }
    stage_columns = (
        ("name", "text"), ("type", "text"), ("body", "text"), ("status", "text"), ("is_english", "boolean"),
        ("headers", "text"),
    )  # fmt: skip

    @classmethod
    def clean_options(cls, options: dict) -> dict:
        unknown = set(options) - {"account_id"}
        if unknown:
            raise ValidationError({"options": f"Unknown option {sorted(unknown)[0]!r}; a DLT import takes account_id."})
        account_id = options.get("account_id")
        if account_id in (None, ""):
            raise ValidationError({"options": NO_ACCOUNT})
        try:  # a whole number, or its digits: int() took 1.5 for 1, and true for 1
            if isinstance(account_id, bool) or (isinstance(account_id, float) and not account_id.is_integer()):
                raise ValueError
            account_id = int(account_id)
        except (TypeError, ValueError):
            raise ValidationError({"options": "account_id must be the id of a provider account."}) from None
        account = ProviderAccount.objects.filter(pk=account_id).first()
        if account is None:
            raise ValidationError({"options": f"No provider account with id {account_id}."})
        if account.kind not in dlt_kinds():  # its senders carry no DLT template; the upload page does not offer it
            vendors = " or ".join(ProviderAccount.Kind(kind).label for kind in dlt_kinds())
            raise ValidationError(
                {
                    "options": f"{account} does not use DLT: choose the {vendors} account the templates are registered on."
                }
            )
        return {"account_id": account_id}

    @classmethod
    def changes_existing(cls, mode: str, tagged: bool) -> tuple[str, str]:
        """Create only leaves a template's body alone, but link() gives it the file's headers all the same."""
        return (
            "kind",
            "to import them: the file's headers are linked to its templates that exist already, in either mode",
        )

    @classmethod
    def option_fields(cls) -> dict[str, forms.Field]:
        return {
            "account_id": forms.ModelChoiceField(
                provider_accounts_using_dlt(),
                error_messages={"required": NO_ACCOUNT_CHOSEN},
                label="Provider account",
                help_text="The account the templates are registered on: their headers are linked to its SMS senders "
                "of those names, never to another account's. Only accounts of a vendor that uses DLT (India) are "
                "offered.",
            )
        }

    def __init__(self, contact_import, layout):
        super().__init__(contact_import, layout)
        self.columns = {name: self.column(name) for name in self.fields}
        self.account_id = self.options.get("account_id")
        self._templates = KeySet()  # the template ids of the file's rows cleaned so far
        self._first_rows = KeySet()  # (template id, body) and (template id, type) of each template's first row
        # Why a header may not be linked to a template of a type: {(header, type): refusal}. Read here, on the
        # import's own connection: clean() runs in the file's reader thread. The links themselves are refused in SQL
        # (_link_senders), from the senders as they are then.
        senders = list(self._senders())
        headers = {sender.pk: sender.name.upper() for sender in senders}
        self._refused = {(headers[pk], kind): problem for (pk, kind), problem in dlt_sender_refusals(senders).items()}

    def _senders(self):
        """The account's SMS senders, which a header may name."""
        return Sender.objects.filter(account_id=self.account_id, channel=Channel.SMS).select_related("account")

    def _cell(self, cells: list[str], name: str) -> str:
        index = self.columns[name][0]
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def clean(self, cells: list[str]) -> list[str]:
        columns = self.columns
        template_id = self._cell(cells, "template_id")
        if not TEMPLATE_ID.fullmatch(template_id):
            reason = "no template id" if not template_id else "not a DLT template id (letters and digits, at most 32)"
            reason = reason_unless_rounded(template_id, reason, ROUNDED_NUMBER_REASON)
            raise RowError(columns["template_id"][1], template_id, reason)
        key = self.key_number(template_id)
        if key in self._templates:
            return self._later_row(template_id, cells)
        body = self._cell(cells, "body")
        try:
            dlt.template_check_body(body)
        except ValidationError as exc:
            raise RowError(columns["body"][1], body, " ".join(exc.messages).rstrip(".")) from None
        type_text = self._cell(cells, "type")
        template_type = TYPES.get(canonical(type_text))
        if template_type is None:
            raise RowError(columns["type"][1], type_text, NOT_A_TYPE)
        status_text = self._cell(cells, "status")
        status = STATUSES.get(canonical(status_text), "") if status_text else ""
        if status_text and not status:
            raise RowError(columns["status"][1], status_text, "not a status (approved, pending or rejected)")
        name = self._cell(cells, "name")
        if len(name) > NAME_MAX:
            raise RowError(columns["name"][1], name, f"longer than {NAME_MAX} characters")
        self._templates.add(key)
        self._first_rows.add(self.key_number(f"{template_id}\0body\0{body}"))
        self._first_rows.add(self.key_number(f"{template_id}\0type\0{template_type}"))
        headers = self._headers(cells)
        values = [template_id, name, template_type, body, status, "t" if is_english(body) else "f", headers]
        self._check_senders(headers, template_type, values)
        return values

    def _check_senders(self, headers: str, template_type: str, values: list[str]) -> None:
        """Report a row whose headers name a sender the template may not carry, in the template page's words; the row
        is imported all the same (RowError's `kept`), and _link_senders leaves that sender out."""
        refused = {
            header: problem for header in headers.split(",") if (problem := self._refused.get((header, template_type)))
        }
        if refused:
            reason = "; ".join(problem.rstrip(".") for problem in refused.values())
            raise RowError(self.columns["header"][1], ", ".join(refused), f"{reason} ({NOT_LINKED})", kept=values)

    def _later_row(self, template_id: str, cells: list[str]) -> list[str]:
        """A template's row after its first: it adds headers (the engine counts it a duplicate and hands them to
        duplicate()). Body and type may be blank; given, they must be the first row's, or the row is reported
        rather than its headers linked to a template that says something else."""
        body, type_text = self._cell(cells, "body"), self._cell(cells, "type")
        if body and self.key_number(f"{template_id}\0body\0{body}") not in self._first_rows:
            reason = f"template {template_id} came on an earlier row with another body, which is kept"
            raise RowError(self.columns["body"][1], body, reason)
        template_type = TYPES.get(canonical(type_text)) if type_text else ""
        if template_type is None:
            raise RowError(self.columns["type"][1], type_text, NOT_A_TYPE)
        if type_text and self.key_number(f"{template_id}\0type\0{template_type}") not in self._first_rows:
            reason = f"template {template_id} came on an earlier row with another type, which is kept"
            raise RowError(self.columns["type"][1], type_text, reason)
        headers = self._headers(cells)
        values = [template_id, "", "", "", "", "f", headers]
        first_type = next(
            (
                kind
                for kind in DltTemplate.Type.values
                if self.key_number(f"{template_id}\0type\0{kind}") in self._first_rows
            ),
            "",
        )
        self._check_senders(headers, first_type, values)
        return values

    def _headers(self, cells: list[str]) -> str:
        return ",".join(header.upper() for header in HEADER_SEPARATORS.split(self._cell(cells, "header")) if header)

    def merge(self, cursor) -> tuple[int, int]:
        table = DltTemplate._meta.db_table
        params = {"account": self.account_id, "approved": DltTemplate.Status.APPROVED}
        updated = 0
        if self.contact_import.mode == ContactImport.Mode.CREATE_UPDATE:
            new = {
                "name": "COALESCE(NULLIF(s.name, ''), t.name)",
                "type": "s.type",
                "body": "s.body",
                "status": "COALESCE(NULLIF(s.status, ''), t.status)",
                "is_english": "s.is_english",
                "account_id": "COALESCE(%(account)s, t.account_id)",
            }
            cursor.execute(
                f"UPDATE {table} t SET {', '.join(f'{k} = {v}' for k, v in new.items())}, updated_at = now()"
                f" FROM {STAGE} s WHERE t.dlt_template_id = s.key"
                f" AND ({', '.join(f't.{k}' for k in new)}) IS DISTINCT FROM ({', '.join(new.values())})",
                params,
            )
            updated = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {table} (account_id, name, dlt_template_id, type, body, status, is_english, remote_id,"
            " created_at, updated_at)"
            " SELECT %(account)s, COALESCE(NULLIF(s.name, ''), s.key), s.key, s.type, s.body,"
            f" COALESCE(NULLIF(s.status, ''), %(approved)s), s.is_english, '', now(), now() FROM {STAGE} s ORDER BY s.key"
            " ON CONFLICT (dlt_template_id) DO NOTHING",
            params,
        )
        return cursor.rowcount, updated

    def link(self, cursor) -> None:
        self._link_senders(cursor, f"{STAGE} s", [])

    def duplicate(self, values: list[str]) -> tuple[str, str] | None:
        """Some exports list a template once per header: the first row gives the template, every row its headers."""
        return (values[0], values[-1]) if values[-1] else None

    def merge_duplicates(self, cursor, kept: list[tuple[str, str]]) -> None:
        keys, headers = zip(*kept, strict=True)
        self._link_senders(cursor, "unnest(%s::text[], %s::text[]) s (key, headers)", [list(keys), list(headers)])

    def _link_senders(self, cursor, rows: str, params: list) -> None:
        """Link each template of `rows` (key: template id; headers: comma-separated, upper case) to the SMS senders
        of those names on the import's account, unless the template is another account's (kept in create only), and
        not to those it may not carry (DLT_LINK_ALLOWED: the template page's rule, for the template's type as saved).
        Its headers are recorded first, so that a sender of one of those names added later is linked to it
        (providers.services.dlt_templates_link_headers): the portal's export often comes before the senders."""
        cursor.execute(
            f"UPDATE {DltTemplate._meta.db_table} t SET headers = ARRAY(SELECT DISTINCT unnest(t.headers || s.named)"
            " ORDER BY 1)"
            f" FROM (SELECT s.key, array_agg(DISTINCT h)::varchar(32)[] AS named FROM {rows}"
            "   CROSS JOIN LATERAL unnest(string_to_array(s.headers, ',')) h"
            "   WHERE length(h) <= %s GROUP BY s.key) s"  # a longer one names no sender
            " WHERE t.dlt_template_id = s.key AND (t.account_id IS NULL OR t.account_id = %s)"
            " AND NOT s.named <@ t.headers",
            [*params, Sender._meta.get_field("name").max_length, self.account_id],
        )
        senders = DltTemplate.senders.field
        cursor.execute(
            f"INSERT INTO {senders.m2m_db_table()} ({senders.m2m_column_name()}, {senders.m2m_reverse_name()})"
            f" SELECT t.id, snd.id FROM {rows}"
            f" JOIN {DltTemplate._meta.db_table} t ON t.dlt_template_id = s.key"
            f" JOIN {Sender._meta.db_table} snd ON upper(snd.name) = ANY (string_to_array(s.headers, ','))"
            "  AND snd.channel = %s AND snd.account_id = %s AND (t.account_id IS NULL OR t.account_id = snd.account_id)"
            f" WHERE {DLT_LINK_ALLOWED} ORDER BY 1, 2 ON CONFLICT DO NOTHING",
            [*params, Channel.SMS, self.account_id, *dlt_refused_params(dlt_sender_refusals(self._senders()))],
        )
