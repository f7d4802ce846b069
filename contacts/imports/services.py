"""Import services: who may start an import, how an upload's columns would be read, create (check the upload, store
it, queue the run), run (the work), cancel."""

from __future__ import annotations

import datetime
import io
import itertools
import logging
import re
import secrets
import zlib
from collections.abc import Callable, Iterable
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import PurePath

import phonenumbers
import redis

from django.conf import settings
from django.contrib.auth import get_permission_codename
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from config.validators import validate_storable_json
from contacts.imports.columns import ATTRIBUTE_PREFIX, HEAD_ROWS, Layout, attribute_key, locate_header
from contacts.imports.engine import ImportCancelled, ImportRun, binary, max_rows
from contacts.imports.readers import FileProblem, file_format, open_sheet
from contacts.imports.registry import get_importer
from contacts.models import ContactImport, Tag
from contacts.services import tags_get_or_create
from contacts.validators import COUNTRY_CODE_ALIASES

logger = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x494D5054  # "IMPT": a session advisory lock (namespace, import id) per running import
Status = ContactImport.Status
FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


def contact_import_permission_errors(*, user, kind: str, mode: str, tagged: bool = False) -> dict[str, list[str]]:
    """The permissions `user` lacks to start this import, as {upload field: [message]}; empty when none is missing.

    An import writes its importer's table (`Importer.model`) without going through that model's admin or API,
    so it takes their permissions: add, and change too when it may change rows that exist already
    (`Importer.changes_existing`: "create and update" mode, tags given to contacts). Tags named but missing are
    created as the contacts API's tagging creates them, without the tag permission.
    """
    importer = get_importer(kind)
    opts = importer.model._meta
    errors: dict[str, list[str]] = {}
    if not user.has_perm(f"{opts.app_label}.{get_permission_codename('add', opts)}"):
        errors["kind"] = [f"You need permission to add {opts.verbose_name_plural} to import them."]
    changes = importer.changes_existing(mode, tagged)
    if changes and not user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}"):
        field, why = changes
        errors.setdefault(field, []).append(f"You need permission to change {opts.verbose_name_plural} {why}.")
    return errors


def contact_import_create(
    *,
    file,
    kind: str = ContactImport.Kind.CONTACTS,
    mapping: dict | None = None,
    tags: Iterable[Tag | int | str] = (),
    mode: str = ContactImport.Mode.CREATE_UPDATE,
    default_region: str = "",
    options: dict | None = None,
    user=None,
) -> ContactImport:
    """Check an upload (kind, format, size, columns, options, tags), store it and queue its import after commit.

    `tags` are Tag objects, ids, or names (created if missing). `mapping` is {column: field}, see
    contacts.imports.columns; what was understood is stored as the import's mapping. Nothing is
    written when a check fails. Permissions are the caller's to check, with contact_import_permission_errors.
    """
    importer = _importer_check(kind)
    if mode not in ContactImport.Mode.values:
        raise ValidationError({"mode": f"Unknown mode {mode!r}; use one of {', '.join(ContactImport.Mode.values)}."})
    region = (default_region or settings.DEFAULT_PHONE_REGION or "").strip().upper()
    region = COUNTRY_CODE_ALIASES.get(region, region)  # UK is GB
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError({"default_region": f"Unknown country {region!r}: give a two-letter code such as IN."})
    if not isinstance(options or {}, dict):
        raise ValidationError({"options": "Give an object of option names to values."})
    for name, value in (("mapping", mapping), ("options", options)):
        try:
            validate_storable_json(value)
        except ValidationError as error:
            raise ValidationError({name: error.messages}) from None
    options = importer.clean_options(options or {})
    _mapping_check(mapping)
    name = PurePath(getattr(file, "name", "") or "").name
    file_format, layout = _upload_check(file, name, importer, mapping)
    importer.check_layout(options, layout)
    tag_objects, tag_names = _tags_check(tags)
    if (tag_objects or tag_names) and not importer.takes_tags:
        raise ValidationError(
            {"tags": f"A {importer.label} import applies no tags: tags go to contacts, so leave them out here."}
        )

    with transaction.atomic():
        tag_objects += tags_get_or_create(names=tag_names)
        contact_import = ContactImport(
            kind=kind,
            original_name=name[:255],
            file_format=file_format,
            mapping=layout.describe(),
            default_region=region,
            mode=mode,
            options=options,
            created_by=user,
        )
        contact_import.file.save(name, file, save=False)
        contact_import.save()
        contact_import.tags.set(tag_objects)
        transaction.on_commit(partial(_enqueue, contact_import.pk))
    return contact_import


def contact_import_columns(*, file, kind: str = ContactImport.Kind.CONTACTS, mapping: dict | None = None) -> dict:
    """How an upload's columns would be read, as contact_import_create reads them, from the file's first rows (the
    head of a large csv is enough): for the upload page's column mapping. Each column's name, its key in a mapping
    (its name, or its position when the name is repeated or a number), the field it feeds ("" for none), the
    attribute it would become, and its first value; the fields a column may feed; `problem`, what the upload would
    refuse of these columns as they are (no phone column…), "" if nothing. Raises ValidationError naming kind, file
    or mapping, with the words contact_import_create would use, when there are no columns to show."""
    importer = _importer_check(kind)
    _mapping_check(mapping)
    _, head = _read_head(file, PurePath(getattr(file, "name", "") or "").name)
    titles, layout = locate_header(head, importer, mapping, complete=False)
    try:  # a required field no column feeds yet: said, with the columns to choose it from
        locate_header(head, importer, mapping)
        problem = ""
    except ValidationError as exc:
        problem = " ".join(exc.messages)
    sample = [*head, []][titles + layout.has_header]
    columns = []
    for index, (key, target) in enumerate(layout.describe().items()):
        name = layout.names[index]
        attribute = (attribute_key(name) or f"column_{index + 1}") if importer.keeps_attributes else ""
        value = sample[index].strip() if index < len(sample) else ""
        columns.append(
            {"key": key, "name": name, "target": target, "attribute": attribute and ATTRIBUTE_PREFIX + attribute,
             "sample": value}
        )  # fmt: skip
    return {"has_header": layout.has_header, "columns": columns, "fields": list(importer.fields), "problem": problem}


# --- Workbooks kept between reading their columns and the upload ------------------------------------
# A csv's columns are read from its first 64 KB, which the upload page sends alone; a workbook's only from the whole
# file (its rows are zipped at its end). So that a workbook is sent once, the upload page asks for it to be kept when
# its columns are read, under a token only its user can name, and the upload form then gives the token instead of
# the file. A kept workbook goes when an import is made of it, or after STAGED_SECONDS (removed the next time one
# is kept).
STAGED_DIR = "imports/staged"
STAGED_SECONDS = 3600
STAGED_GONE = "The file chosen earlier is no longer kept (an hour at most): choose it again."
_STAGED_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _staged_key(token: str) -> str:
    return f"contact-import-staged:{token}"


def contact_import_stage(*, file, user) -> str:
    """Keep an uploaded file for STAGED_SECONDS for `user` (see above), removing those kept longer; its token."""
    cutoff = timezone.now() - datetime.timedelta(seconds=STAGED_SECONDS)
    with suppress(FileNotFoundError):
        for name in default_storage.listdir(STAGED_DIR)[1]:
            path = f"{STAGED_DIR}/{name}"
            with suppress(FileNotFoundError):  # another request removed it first
                if default_storage.get_modified_time(path) < cutoff:
                    default_storage.delete(path)
    token = secrets.token_urlsafe(24)
    name = PurePath(getattr(file, "name", "") or "").name
    path = default_storage.save(f"{STAGED_DIR}/{token}{PurePath(name).suffix.lower()[:8]}", file)
    try:
        cache.set(_staged_key(token), {"user": user.pk, "path": path, "name": name}, STAGED_SECONDS)
    except redis.RedisError as exc:  # the cache unreachable: nothing kept, and the form sends the file again
        logger.warning("A workbook was not kept for its upload: the cache is unreachable (%s)", exc)
        default_storage.delete(path)
        return ""
    return token


def _staged_entry(token: str) -> dict | None:
    """What the cache holds for a well-formed token; None for none, or when the cache is unreachable (the file is
    then asked for again, as one no longer kept)."""
    if not _STAGED_TOKEN.fullmatch(token or ""):
        return None
    try:
        return cache.get(_staged_key(token))
    except redis.RedisError as exc:
        logger.warning("A kept workbook could not be looked up: the cache is unreachable (%s)", exc)
        return None


def contact_import_staged(*, token: str, user) -> File:
    """The file kept under `token` for `user`, open, under the name it was uploaded with; ValidationError naming
    the file when there is none (expired, used, or kept for someone else)."""
    kept = _staged_entry(token)
    if not kept or kept["user"] != user.pk:
        raise ValidationError({"file": STAGED_GONE})
    try:
        return File(default_storage.open(kept["path"]), name=kept["name"])
    except FileNotFoundError:
        raise ValidationError({"file": STAGED_GONE}) from None


def contact_import_unstage(*, token: str) -> None:
    """Remove a kept file (its import is made, with its own copy)."""
    kept = _staged_entry(token)
    if kept:
        with suppress(redis.RedisError):  # unreachable: the entry expires with the hour, and its file is gone
            cache.delete(_staged_key(token))
        default_storage.delete(kept["path"])


def contact_import_columns_kept(
    *,
    file=None,
    staged: str = "",
    keep: bool = False,
    user,
    kind: str = ContactImport.Kind.CONTACTS,
    mapping: dict | None = None,
) -> dict:
    """contact_import_columns of an upload, or of the file kept under `staged`; with `keep`, the upload is kept
    too and its token answered as `staged`, for the upload form to give instead of sending the file again."""
    if file is None:
        if not staged:
            raise ValidationError({"file": "Choose a file."})
        with contact_import_staged(token=staged, user=user) as kept:
            return {**contact_import_columns(file=kept, kind=kind, mapping=mapping), "staged": staged}
    columns = contact_import_columns(file=file, kind=kind, mapping=mapping)
    return {**columns, "staged": contact_import_stage(file=file, user=user) if keep else ""}


def contact_import_create_uploaded(*, file=None, staged: str = "", user, **arguments) -> ContactImport:
    """contact_import_create of the uploaded file, or else of the file kept under `staged`, which is then removed
    (kept if the upload is refused, so that the form sent again with its errors put right still finds it)."""
    if file is not None or not staged:
        return contact_import_create(file=file, user=user, **arguments)
    with contact_import_staged(token=staged, user=user) as kept:
        contact_import = contact_import_create(file=kept, user=user, **arguments)
    transaction.on_commit(partial(contact_import_unstage, token=staged))
    return contact_import


def _importer_check(kind: str):
    if kind not in ContactImport.Kind.values:
        raise ValidationError({"kind": f"Unknown kind {kind!r}; use one of {', '.join(ContactImport.Kind.values)}."})
    return get_importer(kind)


def _mapping_check(mapping) -> None:
    if not isinstance(mapping or {}, dict) or not all(
        isinstance(value, str | None) for value in (mapping or {}).values()
    ):
        raise ValidationError({"mapping": 'Give an object of column names to fields, e.g. {"Mobile": "phone"}.'})


def _enqueue(import_id: int) -> None:
    from contacts.tasks import contact_import_run_task

    contact_import_run_task.delay(import_id)


def contact_import_run(
    *,
    import_id: int,
    chunk_size: int | None = None,
    progress: Callable[[ContactImport], None] | None = None,
) -> ContactImport:
    """Import the file of a waiting or interrupted import, chunk by chunk; a finished import is left as it is.

    Safe to run twice: while one run holds the import (a session advisory lock), another returns at
    once with the import still running; a run after a crash resumes after the last committed chunk.
    Imports of one kind run one at a time (see _kind_lock): while another runs, this one returns at once, still
    waiting, for its task to look again later.
    `progress` is called with the import after each chunk commits. Call it outside any transaction.
    """
    with _run_lock(import_id) as locked, _kind_lock(import_id, locked) as kind_locked:
        if not (locked and kind_locked):
            return ContactImport.objects.get(pk=import_id)
        contact_import = _run_start(import_id)
        if contact_import.status != Status.RUNNING:
            return contact_import
        try:
            ImportRun(contact_import, chunk_size=chunk_size, progress=progress).execute()
        except FileProblem as exc:
            return _run_finish(import_id, Status.FAILED, str(exc))
        except ImportCancelled:
            return _run_finish(import_id, Status.CANCELLED)
        except Exception as exc:
            logger.exception("Import %s stopped", import_id)
            message = f"The import stopped on an unexpected error ({exc.__class__.__name__}: {exc}); rows merged before it are kept."
            return _run_finish(import_id, Status.FAILED, message)
        return _run_finish(import_id, Status.COMPLETED)


@transaction.atomic
def contact_import_cancel(*, import_id: int) -> ContactImport:
    """Cancel an import: a waiting one at once, a running one before its next chunk commits (what was committed stays)."""
    contact_import = ContactImport.objects.select_for_update().get(pk=import_id)
    if contact_import.status in FINISHED:
        raise ValidationError(
            {"status": f"The import is {contact_import.get_status_display()}: too late to cancel it."}
        )
    contact_import.cancel_requested = True
    update_fields = ["cancel_requested"]
    if contact_import.status == Status.PENDING:
        contact_import.status = Status.CANCELLED
        contact_import.finished_at = timezone.now()
        update_fields += ["status", "finished_at"]
    contact_import.save(update_fields=update_fields)
    return contact_import


KIND_LOCK_NAMESPACE = 0x494D504B  # "IMPK": a session advisory lock (namespace, kind) per kind being imported


@contextmanager
def _kind_lock(import_id: int, wanted: bool):
    """Whether this session holds its import's kind, as long as the block lasts (None when not `wanted`).

    A run merges chunks side by side and commits them in file order, each chunk holding its rows' locks until the
    chunks before it commit, a wait PostgreSQL cannot see. Two imports of the same rows in another order could so
    wait on each other for ever (each one's later chunk holding a row that the other's earlier chunk waits for):
    so imports of a kind, which write one table, run one at a time."""
    if not wanted:
        yield None
        return
    kind = ContactImport.objects.values_list("kind", flat=True).get(pk=import_id)
    with _advisory_lock(KIND_LOCK_NAMESPACE, zlib.crc32(kind.encode()) - (1 << 31)) as locked:  # (a signed int4)
        yield locked


@contextmanager
def _run_lock(import_id: int):
    with _advisory_lock(LOCK_NAMESPACE, import_id) as locked:
        yield locked


@contextmanager
def _advisory_lock(namespace: int, key: int):
    """Whether this session took the advisory lock (namespace, key) without waiting; held as long as the block."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", [namespace, key])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [namespace, key])


@transaction.atomic
def _run_start(import_id: int) -> ContactImport:
    contact_import = ContactImport.objects.select_for_update().get(pk=import_id)
    if contact_import.status in FINISHED:
        return contact_import
    if contact_import.cancel_requested:
        contact_import.status, contact_import.finished_at = Status.CANCELLED, timezone.now()
    else:
        contact_import.status = Status.RUNNING
        contact_import.started_at = contact_import.started_at or timezone.now()
    contact_import.save(update_fields=["status", "started_at", "finished_at"])
    return contact_import


@transaction.atomic
def _run_finish(import_id: int, status: str, message: str = "") -> ContactImport:
    contact_import = ContactImport.objects.select_for_update().get(pk=import_id)
    contact_import.status, contact_import.error_message = status, message
    contact_import.finished_at = timezone.now()
    if status == Status.COMPLETED:
        contact_import.rows_total = contact_import.rows_read
    contact_import.save(update_fields=["status", "error_message", "finished_at", "rows_total"])
    return contact_import


def _upload_check(file, name: str, importer, mapping: dict | None) -> tuple[str, Layout]:
    """The file's format and columns, read from its first rows; raises ValidationError naming file or mapping."""
    fmt, head = _read_head(file, name, count=True)
    return fmt, locate_header(head, importer, mapping)[1]


def _read_head(file, name: str, *, count: bool = False) -> tuple[str, list[list[str]]]:
    """The file's format and its first non-empty rows (HEAD_ROWS, or as many as it has, at least one); raises
    ValidationError naming the file. With `count` (an upload, not the page's look at the columns), a workbook that
    states no size has its rows counted (1.5 s a million), so that one over the limit is refused here too."""
    limit_mb = settings.IMPORT_MAX_FILE_MB
    size = getattr(file, "size", None)
    if not size:
        raise ValidationError({"file": "The file is empty."})
    if size > limit_mb * 1024 * 1024:
        raise ValidationError(
            {
                "file": f"The file is {size:,} bytes, over the limit of {limit_mb:g} MB ({int(limit_mb * 1048576):,} bytes)."
            }
        )
    fh = binary(file)
    try:
        fh.seek(0)
        fmt = file_format(name, fh.read(512))
        with open_sheet(fh, fmt, scan=count and fmt == "xlsx") as sheet:
            non_empty = (cells for _, cells in sheet.rows if any(cells))
            head = list(itertools.islice(non_empty, HEAD_ROWS))
            if not head:
                raise FileProblem("The file has no rows.")
            # The size a workbook states only bounds its rows (a formatted cell far below the data stretches it to
            # row 1,048,576): over the limit, its rows are counted, as far as the limit (an xlsx streams, fast).
            if fmt in ("xls", "xlsx") and (sheet.lines or 0) - 1 > max_rows():
                rows = len(head) + sum(1 for _ in itertools.islice(non_empty, max_rows() + 1 - len(head) + 1))
                if rows - 1 > max_rows():
                    raise FileProblem(
                        f"The file has more than {max_rows():,} rows, the most one import takes: split it."
                    )
    except FileProblem as exc:
        raise ValidationError({"file": str(exc)}) from None
    except (OSError, io.UnsupportedOperation) as exc:
        raise ValidationError({"file": f"The file could not be read: {exc}."}) from None
    finally:
        fh.seek(0)
    return fmt, head


def _tags_check(tags: Iterable[Tag | int | str]) -> tuple[list[Tag], list[str]]:
    """Existing tags (objects, ids) and the names of tags to find or create."""
    objects, ids, names = [], [], []
    max_length = Tag._meta.get_field("name").max_length
    for tag in tags or ():
        if isinstance(tag, Tag):
            objects.append(tag)
        elif isinstance(tag, int) and not isinstance(tag, bool):
            ids.append(tag)
        elif isinstance(tag, str) and 0 < len(tag.strip()) <= max_length:
            names.append(tag.strip())
        else:
            raise ValidationError(
                {"tags": f"{tag!r} is not a tag: give ids or names of at most {max_length} characters."}
            )
    found = list(Tag.objects.filter(pk__in=ids))
    if missing := sorted(set(ids) - {tag.pk for tag in found}):
        raise ValidationError({"tags": f"No tag with id {', '.join(map(str, missing))}."})
    return objects + found, list(dict.fromkeys(names))
