"""An import's error report as rows of cells, read with the delimiter it was written with (the file's: a comma, or a
semicolon for a file Excel saved with one)."""

import csv
import io


def error_report_rows(contact_import) -> list[list[str]]:
    """Its rows, the header first."""
    with contact_import.error_report.open("rb") as fh:
        text = fh.read().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";" if text.startswith("row;") else ","))
