"""The import machinery: read the file row by row, clean, COPY a chunk into a staging table, merge it set-based.

Each chunk (IMPORT_CHUNK_SIZE rows) is one transaction that also moves the import's counters, so
progress shows while it runs, a crash loses only the chunks in flight, and a run that follows a crash
resumes after the last committed chunk: it reads the rows before it again only to rebuild the
error report and the keys seen, without merging them twice.

Memory holds a few chunks, never the rows of the file. What grows with it is the set of keys seen,
to drop duplicates (the first occurrence wins, and the error report names it beside each row left
out): a 64-bit number per distinct key with the 32-bit number of its first row, in flat tables
(KeyRows), about 25 MB for a million rows. A PostgreSQL table of keys instead cost 5-10 µs a row of
index maintenance, a third of the time budget of a row.

Cleaning a chunk (parsing phone numbers, mostly) runs in a thread while earlier chunks merge, and
chunks merge side by side on IMPORT_MERGE_CONNECTIONS connections (one PostgreSQL backend each: the
merge is the costly part, and it is CPU-bound in one backend). They cannot get in each other's way:
no two chunks hold the same key, and an importer writes only rows of its own keys (one that wrote a
row shared by several keys could make a later chunk hold a lock that an earlier one waits for, while
the later one waits for its turn to commit: a hang). `merge_duplicates` may add to earlier keys' rows:
it runs once its chunk's turn has come, when no earlier chunk is left to hold a lock. Chunks commit
one after another in file order (CommitOrder), so what is committed is always the file up to some
chunk, which a resumed run relies on.
Inside a transaction (tests) the chunks merge one by one on the caller's connection.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import queue
import tempfile
import threading
from array import array
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import connection, transaction
from django.db.models import F

from config.spreadsheet import inert
from contacts.imports.base import STAGE, RowError
from contacts.imports.columns import HEAD_ROWS, locate_header
from contacts.imports.readers import FileProblem, open_sheet
from contacts.imports.registry import get_importer
from contacts.models import ContactImport

logger = logging.getLogger(__name__)

ERROR_VALUE_MAX = 200  # characters of a bad value quoted in the error report
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": None})


class ImportCancelled(Exception):
    """The user asked to cancel; raised as a chunk is about to commit, which it then does not."""


class ChunkAbandoned(Exception):
    """An earlier chunk failed, so this one must not commit: the committed rows stay a prefix of the file."""


def max_rows() -> int:
    return settings.IMPORT_MAX_ROWS


def merge_connections() -> int:
    return max(1, settings.IMPORT_MERGE_CONNECTIONS)


def copy_line(values: list[str]) -> str:
    """One row in COPY's text format."""
    line = "\t".join(values)
    if "\\" in line or "\n" in line or "\r" in line or "\x00" in line or line.count("\t") != len(values) - 1:
        line = "\t".join(value.translate(_COPY_ESCAPES) for value in values)
    return line + "\n"


@dataclass
class Chunk:
    """Rows of the file, cleaned and ready to COPY; `replay` when an earlier run already merged them."""

    replay: bool = False
    rows: int = 0
    invalid: int = 0
    duplicates: int = 0
    lines: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)
    kept: list = field(default_factory=list)  # what the importer keeps of the chunk's duplicate rows


_FIBONACCI = 0x9E3779B97F4A7C15  # KeySet's hashing: 2^64 / golden ratio, spreads keys over the slots


class KeySet:
    """A set of non-zero 63-bit integers in one flat array, open addressing, at most half full: 16 to 32 bytes a key
    where Python's set of ints takes about 64."""

    __slots__ = ("_count", "_mask", "_shift", "_slots")

    def __init__(self, capacity: int = 0):
        self._allocate(max(16, (2 * capacity - 1).bit_length()))

    def _allocate(self, bits: int) -> None:
        self._slots = array("q", bytes(8 << bits))
        self._mask, self._shift, self._count = (1 << bits) - 1, 64 - bits, 0

    def add(self, key: int) -> bool:
        """Add `key`; False if it was there already."""
        slots, mask = self._slots, self._mask
        slot = (key * _FIBONACCI & 0xFFFFFFFFFFFFFFFF) >> self._shift
        while (found := slots[slot]) != 0:
            if found == key:
                return False
            slot = (slot + 1) & mask
        slots[slot] = key
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return True

    def __contains__(self, key: int) -> bool:
        slots, mask = self._slots, self._mask
        slot = (key * _FIBONACCI & 0xFFFFFFFFFFFFFFFF) >> self._shift
        while (found := slots[slot]) != 0:
            if found == key:
                return True
            slot = (slot + 1) & mask
        return False

    def _grow(self) -> None:
        old = self._slots
        self._allocate(64 - self._shift + 1)
        for key in old:
            if key:
                self.add(key)


class KeyRows(KeySet):
    """A KeySet that keeps with each key the number of the file's row it came first on (4 bytes more a slot), so
    that a row repeating the key is reported naming the row that is kept."""

    __slots__ = ("_rows",)

    def _allocate(self, bits: int) -> None:
        super()._allocate(bits)
        self._rows = array("I", bytes(array("I").itemsize << bits))

    def first_row(self, key: int, row: int) -> int:
        """Add `key`, seen on `row` (from 1): 0 if it is new, else the row it came first on."""
        slots, mask = self._slots, self._mask
        slot = (key * _FIBONACCI & 0xFFFFFFFFFFFFFFFF) >> self._shift
        while (found := slots[slot]) != 0:
            if found == key:
                return self._rows[slot]
            slot = (slot + 1) & mask
        slots[slot], self._rows[slot] = key, row
        self._count += 1
        if self._count * 2 > mask:
            self._grow()
        return 0

    def _grow(self) -> None:
        keys, rows = self._slots, self._rows
        self._allocate(64 - self._shift + 1)
        for key, row in zip(keys, rows, strict=True):
            if key:
                self.first_row(key, row)


class ErrorReport:
    """The bad rows as CSV (row, column, value, reason), spooled to a temporary file until the import ends. Separated
    by semicolons when the file was (`delimiter`): Excel, where its list separator is one (France, Russia…), saves its
    csv so and opens a comma-separated report as one column."""

    HEADER = ["row", "column", "value", "reason"]
    DELIMITERS = (",", ";")  # what Excel separates with; a tab or bar in a .csv it would not split on

    def __init__(self):
        self.count = 0
        self.delimiter = ","  # until the file is open (set by ImportRun), before the first row is added
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._text = io.TextIOWrapper(self._file, encoding="utf-8-sig", newline="")  # BOM: Excel reads accents right
        self._writer = None

    def add(self, errors: list[tuple[int, str, str, str]]) -> None:
        if errors and self._writer is None:
            self._writer = csv.writer(
                self._text, delimiter=self.delimiter if self.delimiter in self.DELIMITERS else ","
            )
            self._writer.writerow(self.HEADER)
        for row, column, value, reason in errors:
            value = value if len(value) <= ERROR_VALUE_MAX else value[:ERROR_VALUE_MAX] + "…"
            self._writer.writerow([row, inert(column), inert(value), reason])
        self.count += len(errors)

    def save(self, contact_import: ContactImport) -> None:
        """Attach the report to the import (replacing an earlier run's), if any row was bad."""
        self._text.flush()
        if contact_import.error_report:
            contact_import.error_report.delete(save=False)
        if self.count:
            self._file.seek(0)
            contact_import.error_report.save(f"import-{contact_import.pk}-errors.csv", File(self._file), save=False)
        ContactImport.objects.filter(pk=contact_import.pk).update(error_report=contact_import.error_report.name or "")

    def close(self) -> None:
        self._text.close()


class ImportRun:
    """One run of one import: from the last committed chunk (none at first) to the end of the file."""

    def __init__(
        self,
        contact_import: ContactImport,
        *,
        chunk_size: int | None = None,
        progress: Callable[[ContactImport], None] | None = None,
    ):
        self.contact_import = contact_import
        self.chunk_size = chunk_size or settings.IMPORT_CHUNK_SIZE
        self.progress = progress
        self.report = ErrorReport()

    def execute(self) -> None:
        """Import the file; raise FileProblem (the file cannot be imported) or ImportCancelled. The error report is
        saved whatever happens."""
        contact_import = self.contact_import
        try:
            with (
                contact_import.file.open("rb") as upload,
                open_sheet(binary(upload), contact_import.file_format, scan=True) as sheet,
            ):
                self.report.delimiter = sheet.delimiter
                rows = _non_empty(sheet.rows)
                head = list(itertools.islice(rows, HEAD_ROWS))
                if not head:
                    raise FileProblem("The file has no rows.")
                try:
                    titles, layout = locate_header(
                        [cells for _, cells in head], get_importer(contact_import.kind), contact_import.mapping
                    )
                except ValidationError as exc:
                    raise FileProblem(" ".join(exc.messages)) from None
                skipped = titles + layout.has_header  # rows above the first of data
                rows = itertools.chain(head[skipped:], rows)
                importer = get_importer(contact_import.kind)(contact_import, layout)
                expected = self._check_size(sheet, skipped)
                self._stage(importer, rows, expected)
        except OSError as exc:
            raise FileProblem(f"The file could not be read: {exc}.") from None
        finally:
            try:
                self.report.save(contact_import)
            except Exception:  # never hide why the import stopped behind a failure to save its report
                logger.exception("Could not save the error report of import %s", contact_import.pk)
            self.report.close()

    def _check_size(self, sheet, skipped: int) -> int:
        """Refuse a file over IMPORT_MAX_ROWS before merging anything; note its size for the progress bar. `skipped`:
        the rows above the data (titles, header)."""
        if sheet.lines is None:
            return 0
        limit = max_rows()
        estimate = max(sheet.lines - skipped, 0)
        # Lines overcount a csv's rows (blank lines, cells on several lines), and a workbook's stated size may go far
        # below its data: count rows only when it matters (and then the progress bar has the count).
        if estimate > limit:
            estimate = self._count_rows() - skipped
            if estimate > limit:
                raise FileProblem(f"The file has more than {limit:,} rows, the most one import takes: split it.")
        ContactImport.objects.filter(pk=self.contact_import.pk, rows_total__isnull=True).update(rows_total=estimate)
        return estimate

    def _count_rows(self) -> int:
        name = self.contact_import.file.name
        with (
            self.contact_import.file.storage.open(name, "rb") as upload,
            open_sheet(binary(upload), self.contact_import.file_format) as sheet,
        ):
            return sum(1 for _ in _non_empty(sheet.rows))

    def _stage(self, importer, rows: Iterator[tuple[int, list[str]]], expected: int) -> None:
        with closing(_prefetch(self._chunks(importer, rows, expected))) as chunks:
            mergers = merge_connections()
            if mergers > 1 and not connection.in_atomic_block:
                self._merge_in_parallel(importer, chunks, mergers)
                return
            order = CommitOrder()  # one connection: every chunk's turn comes at once
            with _staging_table(importer) as (cursor, copy_sql):
                for seq, chunk in enumerate(self._to_merge(chunks)):
                    self._apply(cursor, importer, chunk, copy_sql, seq, order)

    def _to_merge(self, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        """The chunks to merge, in file order; each one's bad rows go to the report first (a replayed chunk's only
        there: an earlier run merged it)."""
        for chunk in chunks:
            self.report.add(chunk.errors)
            if not chunk.replay:
                yield chunk

    def _merge_in_parallel(self, importer, chunks: Iterator[Chunk], mergers: int) -> None:
        """Hand the chunks out to `mergers` threads, each merging on its own connection; raise the first failure."""
        order = CommitOrder()
        jobs: queue.Queue = queue.Queue(maxsize=1)  # a merger that finishes finds the next chunk waiting
        failures: dict[int, BaseException] = {}

        def merge() -> None:
            try:
                with _staging_table(importer) as (cursor, copy_sql):
                    while (job := jobs.get()) is not _DONE:
                        seq, chunk = job
                        try:
                            self._apply(cursor, importer, chunk, copy_sql, seq, order)
                        except BaseException as exc:
                            failures[seq] = exc
                            order.fail(seq)
            except BaseException as exc:  # creating or dropping the staging table failed
                if not failures:  # else an earlier error is the one to report
                    failures[-1] = exc
                order.fail(-1)  # no chunk may commit any more
            finally:
                connection.close()  # this thread's own connection

        threads = [threading.Thread(target=merge, name=f"import-merge-{n}", daemon=True) for n in range(mergers)]
        for thread in threads:
            thread.start()
        seq = 0
        try:
            for chunk in self._to_merge(chunks):
                if not _put_unless(jobs, (seq, chunk), partial(order.failed_before, seq)):
                    break  # an earlier chunk failed: stop reading the file
                seq += 1
        except BaseException:
            order.fail(seq)  # the file could not be read further: let the chunks before this point finish
            raise
        finally:
            for _ in threads:  # one end-of-work mark for each merger
                _put_unless(jobs, _DONE, lambda: not any(merger.is_alive() for merger in threads))
            for thread in threads:
                thread.join()
        real = {seq: exc for seq, exc in failures.items() if not isinstance(exc, ChunkAbandoned)}
        if real:
            raise real[min(real)]

    def _chunks(self, importer, rows, expected: int) -> Iterator[Chunk]:
        """Cleaned chunks of the file: first those an earlier run merged (replayed), then chunk_size rows each."""
        clean, key_number, duplicate = importer.clean, importer.key_number, importer.duplicate
        replay = self.contact_import.rows_read
        limit = max_rows()
        seen = KeyRows(min(expected, limit))
        key_index, key_column = importer.column(importer.key_field)
        chunk = Chunk(replay=replay > 0)
        for read, (number, cells) in enumerate(rows, start=1):
            if read > limit:
                raise FileProblem(f"The file has more than {limit:,} rows, the most one import takes: split it.")
            try:
                values = clean(cells)
            except RowError as error:
                chunk.errors.append((number, error.column, error.value, error.reason))
                values = error.kept  # None: the row is dropped
                if values is None:  # (a row kept is counted as the rows merged are: the counts add up to the rows)
                    chunk.invalid += 1
            if values is not None:
                if not (first := seen.first_row(key_number(values[0]), number)):
                    chunk.lines.append(copy_line(values))
                else:
                    chunk.duplicates += 1
                    if (kept := duplicate(values)) is not None:
                        chunk.kept.append(kept)
                    else:  # left out: said in the report, with the row kept (the cell as written)
                        written = cells[key_index].strip() if key_index is not None and key_index < len(cells) else ""
                        reason = f"same {importer.key_words} as row {first}, which is kept"
                        chunk.errors.append((number, key_column, written or values[0], reason))
            chunk.rows += 1
            if chunk.rows == self.chunk_size or read == replay:
                yield chunk
                chunk = Chunk(replay=read < replay)
        if chunk.rows:
            yield chunk

    def _apply(self, cursor, importer, chunk: Chunk, copy_sql: str, seq: int, order: CommitOrder) -> None:
        """COPY, merge, link and count: one transaction, committed after the chunks before it (`order`)."""
        contact_import = self.contact_import
        if order.failed_before(seq):
            raise ChunkAbandoned
        created = updated = 0
        with transaction.atomic():
            if chunk.lines:
                cursor.execute(f"TRUNCATE {STAGE}")
                with cursor.cursor.copy(copy_sql) as copy:
                    copy.write("".join(chunk.lines))
                created, updated = importer.merge(cursor)
                importer.link(cursor)
            order.wait_turn(seq)
            # Asked here, once the chunks before this one are in: a cancel stops right after the chunk it saw.
            if ContactImport.objects.filter(pk=contact_import.pk, cancel_requested=True).exists():
                raise ImportCancelled
            if chunk.kept:  # after the turn: the rows they belong to are in, whichever chunk merged them
                importer.merge_duplicates(cursor, chunk.kept)
            ContactImport.objects.filter(pk=contact_import.pk).update(
                rows_read=F("rows_read") + chunk.rows,
                created=F("created") + created,
                updated=F("updated") + updated,
                unchanged=F("unchanged") + len(chunk.lines) - created - updated,
                invalid=F("invalid") + chunk.invalid,
                duplicates=F("duplicates") + chunk.duplicates,
            )
        try:
            if self.progress:
                contact_import.refresh_from_db(fields=_COUNTERS)
                self.progress(contact_import)
        except BaseException:
            order.fail(seq + 1)  # this chunk is in; the next must not follow
            raise
        finally:
            order.done(seq)


_COUNTERS = ["rows_total", "rows_read", "created", "updated", "unchanged", "invalid", "duplicates", "cancel_requested"]


class CommitOrder:
    """Chunk n commits only after chunk n - 1 has, and not at all once an earlier chunk has failed."""

    def __init__(self):
        self._changed = threading.Condition()
        self._next = 0  # the chunk whose turn it is to commit
        self._first_failure: int | None = None

    def wait_turn(self, seq: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._next == seq or self.failed_before(seq))
            if self.failed_before(seq):
                raise ChunkAbandoned

    def done(self, seq: int) -> None:
        with self._changed:
            self._next = seq + 1
            self._changed.notify_all()

    def fail(self, seq: int) -> None:
        with self._changed:
            if self._first_failure is None or seq < self._first_failure:
                self._first_failure = seq
            self._changed.notify_all()

    def failed_before(self, seq: int) -> bool:
        return self._first_failure is not None and self._first_failure < seq


@contextmanager
def _staging_table(importer) -> Iterator[tuple]:
    """This connection's staging table for the importer's columns: (cursor, the COPY statement that fills it)."""
    columns = ", ".join(["key text", *(f"{name} {sql_type}" for name, sql_type in importer.stage_columns)])
    copy_sql = f"COPY {STAGE} (key, {', '.join(name for name, _ in importer.stage_columns)}) FROM STDIN"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGE} ({columns})")
        yield cursor, copy_sql
        cursor.execute(f"DROP TABLE {STAGE}")


def binary(upload):
    """The plain binary file under Django's File and tempfile's wrappers (TextIOWrapper wants the real thing)."""
    while not isinstance(upload, io.IOBase) and hasattr(upload, "file"):
        upload = upload.file
    return upload


def _non_empty(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    return ((number, cells) for number, cells in rows if any(cells))


_DONE = object()


def _put_unless(handoff: queue.Queue, item, give_up: Callable[[], bool]) -> bool:
    """Put `item` on the bounded queue, waiting for room unless `give_up()` says no one will take it: False then."""
    while not give_up():
        try:
            handoff.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _prefetch(chunks: Iterator[Chunk], depth: int = 1) -> Iterator[Chunk]:
    """Produce the next chunk in a thread while the caller merges this one; errors surface in the caller."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for chunk in chunks:
                if not _put_unless(handoff, chunk, stop.is_set) or stop.is_set():
                    return
            handoff.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(exc)

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while (item := handoff.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a blocked producer see the stop flag
            with suppress(queue.Empty):
                handoff.get(timeout=0.1)
        thread.join()
