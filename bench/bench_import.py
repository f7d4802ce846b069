"""Contact import throughput: a generated csv through the real import service, against the COPY floor.

    .venv/bin/python -m bench.bench_import --rows 1000000      (or --scale 1.0; default BENCH_SCALE)

Generates a deterministic csv (seeded): Indian mobile numbers, half E.164 and half national (some
with spaces), first and last names, e-mails, a city column (an attribute), and a few bad and
duplicate rows. Imports it with 3 tags through contact_import_create / contact_import_run (no
Celery), then again (every row unchanged), and measures the floor: the same file COPYed into a
bare table. Runs on a throwaway database. Target: a first import of at least 50,000 rows/s.

Then the same rows as an Excel workbook (bench.xlsx_read): the time and peak memory of the upload page's columns
and of reading every row, each in a fresh process, against openpyxl's own reader.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import unicodedata
from unittest import mock

from bench.common import Result, Timer, add_scale_arguments, peak_rss_mb, rss_mb, standalone
from bench.xlsx_read import excel_workbook, measure

FIRST = ["Aarav", "Vivaan", "Aditya", "Vihaan", "Arjun", "Sai", "Ananya", "Diya", "Saanvi", "Aadhya", "Zoë", "José"]
LAST = ["Sharma", "Verma", "Gupta", "Iyer", "Reddy", "Nair", "Patel", "Singh", "Khan", "Das", "Müller", "Núñez"]
CITIES = ["Mumbai", "Delhi", "Bengaluru", "Chennai", "Kolkata", "Pune", "Hyderabad", "Jaipur"]
BAD = ["12345", "not a number", "", "+91 12", "0000000000"]
SPACE = 4_000_000_000  # 10-digit numbers from 6000000000 on
FULL = 1_000_000
TARGET_RATE = 50_000
XLSX_READS = {"columns": "the upload page's columns", "rows": "reading every row"}
XLSX_READERS = ("herald", "openpyxl")
GROWTH = "MB growth"  # over what the process held before reading: nil for a small workbook


def generate(path: str, rows: int, seed: int) -> dict[str, int]:
    """Write the csv; returns how many good, bad and duplicate rows it has."""
    from contacts.phones import InvalidPhone, normalize_phone

    rng = random.Random(seed)
    step = 2_654_435_761  # coprime with SPACE: i -> i * step mod SPACE visits distinct numbers
    offset = rng.randrange(SPACE)
    counts = {"good": 0, "bad": 0, "duplicates": 0}
    recent: list[str] = []
    index = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Mobile", "First Name", "Last Name", "Email", "City"])
        for row in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            roll = rng.random()
            if roll < 0.001:
                phone = rng.choice(BAD)
                counts["bad"] += 1
            elif roll < 0.002 and recent:
                phone = rng.choice(recent)
                counts["duplicates"] += 1
            else:
                while True:
                    national = str(6_000_000_000 + (offset + index * step) % SPACE)
                    index += 1
                    try:
                        normalize_phone(national, "IN")
                        break
                    except InvalidPhone:
                        continue
                style = rng.random()
                phone = (
                    f"+91{national}" if style < 0.5 else (f"{national[:5]} {national[5:]}" if style < 0.6 else national)
                )
                counts["good"] += 1
                if len(recent) < 1000:
                    recent.append(phone)
            email = f"{ascii(first)}.{ascii(last)}{row}@example.com" if rng.random() < 0.7 else ""
            writer.writerow([phone, first, last, email, rng.choice(CITIES)])
    return counts


def ascii(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def floor(path: str) -> float:
    """Seconds to COPY the file as it is into a bare table: what PostgreSQL alone costs."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (mobile text, first_name text, last_name text, email text, city text)")
        with (
            Timer() as timer,
            open(path, "rb") as fh,
            cursor.cursor.copy("COPY bench_floor FROM STDIN (FORMAT csv, HEADER)") as copy,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
        cursor.execute("DROP TABLE bench_floor")
    return timer.seconds


def run_import(path: str, tags: list[str], chunk_size: int | None):
    from django.core.files import File

    from contacts.imports import contact_import_create, contact_import_run

    with mock.patch("contacts.imports.services._enqueue"), open(path, "rb") as fh:  # run here, not in a worker
        contact_import = contact_import_create(file=File(fh, name="bench.csv"), kind="contacts", tags=tags)
    with Timer() as timer:
        contact_import = contact_import_run(import_id=contact_import.pk, chunk_size=chunk_size)
    assert contact_import.status == "completed", contact_import.error_message
    return contact_import, timer.seconds


def run(*, rows: int, scale: float, args=None) -> Result:
    tags_count = getattr(args, "tags", 3)
    seed = getattr(args, "seed", 20240531)
    chunk_size = getattr(args, "chunk_size", None)
    result = Result("import", f"Contact import: csv → contacts with {tags_count} tags", rows, scale)
    with tempfile.TemporaryDirectory(prefix="herald-bench-") as tmp:
        path = os.path.join(tmp, "contacts.csv")
        with Timer() as gen:
            counts = generate(path, rows, seed)
        size_mb = os.path.getsize(path) / 1024 / 1024
        rss_before = rss_mb()
        floor_seconds = floor(path)
        floor_rate = rows / floor_seconds
        tags = [f"bench-{n}" for n in range(tags_count)]
        first, first_seconds = run_import(path, tags, chunk_size)
        again, again_seconds = run_import(path, tags, chunk_size)
        importer_peak = peak_rss_mb()
        xlsx_path = os.path.join(tmp, "contacts.xlsx")
        excel_workbook(path, xlsx_path)
        xlsx = {(what, reader): measure(xlsx_path, what, reader) for what in XLSX_READS for reader in XLSX_READERS}
    first_rate, again_rate = rows / first_seconds, rows / again_seconds
    result.add("first import", first_rate, "rows/s", floor_rate, first_rate / floor_rate, f"≥ {TARGET_RATE:,}/s",
               first_rate >= TARGET_RATE, headline=True)  # fmt: skip
    result.add("re-import (every row unchanged)", again_rate, "rows/s", floor_rate, again_rate / floor_rate)
    result.add("first import time", first_seconds, "s", floor_seconds, first_seconds / floor_seconds)
    result.add("peak RSS of the importing process", importer_peak, "MB")
    for what, label in XLSX_READS.items():  # the floor column: openpyxl's own reader, for comparison
        ours, theirs = xlsx[what, "herald"], xlsx[what, "openpyxl"]
        result.add(f"xlsx as Excel writes it: {label}, time", ours["seconds"], "s", theirs["seconds"])
        result.add(f"xlsx as Excel writes it: {label}, peak memory", ours["peak_mb"], GROWTH, theirs["peak_mb"])
    result.details = {
        "csv_mb": round(size_mb, 1),
        "generated_seconds": gen.seconds,
        "rss_before_import_mb": rss_before,
        "floor_seconds": floor_seconds,
        "xlsx": {f"{what}_{reader}": figures for (what, reader), figures in xlsx.items()},
        **{
            f"{label}_{name}": getattr(outcome, name)
            for label, outcome in (("first", first), ("again", again))
            for name in ("created", "updated", "unchanged", "invalid", "duplicates")
        },
    }
    result.notes.append(
        f"{rows:,} rows ({counts['good']:,} good, {counts['bad']:,} bad, {counts['duplicates']:,} duplicates), "
        f"{size_mb:.1f} MB, generated in {gen.seconds:.1f} s; first import created {first.created:,}, "
        f"re-import left {again.unchanged:,} unchanged"
    )
    result.notes.append(
        "xlsx: the same rows as an Excel workbook (every cell a shared text), read in a process of its own; the floor"
        " column is openpyxl's own read-only reader (every shared text read before the first row)"
    )
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_scale_arguments(p, FULL, "rows")
    p.add_argument("--tags", type=int, default=3)
    p.add_argument("--seed", type=int, default=20240531)
    p.add_argument("--chunk-size", type=int, default=None)
    return p


if __name__ == "__main__":
    standalone(run, parser(), FULL)
