"""`integration-assets export SCHEMA.TABLE`: a warehouse table as CSV for a person's spreadsheet.

The values are the stored values, quoted by the CSV rules; a cell that a spreadsheet would run as a
formula (one starting with `=`, `+`, `@`... such as a customer named `=HYPERLINK(...)`) is written
with a leading `'` by `defusedcsv`, so opening the file shows the text and runs nothing. The
warehouse keeps the value verbatim: only the export, meant for spreadsheets, is defused.
"""

from __future__ import annotations

from typing import TextIO

import duckdb
from defusedcsv import csv

BATCH_ROWS = 10_000


class UnknownTable(ValueError):
    """The name is not a table of the warehouse."""


def export_table(con: duckdb.DuckDBPyConnection, qualified: str, out: TextIO) -> int:
    """Write `qualified` ("schema.table") as CSV with a header to `out`; the number of rows written.

    The name must be a table of the warehouse (checked against its catalogue, never pasted into SQL
    as given), so a name cannot smuggle in a statement."""
    schema, _, table = qualified.partition(".")
    known = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    if not table or known is None:
        tables = ", ".join(
            f"{s}.{t}"
            for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('core', 'ops', 'reporting', 'staging') ORDER BY 1, 2"
            ).fetchall()
        )
        raise UnknownTable(f"no table {qualified!r} in the warehouse (tables: {tables})")
    cursor = con.execute(f'SELECT * FROM "{known[0]}"."{known[1]}"')
    writer = csv.writer(out)
    writer.writerow([column[0] for column in cursor.description])
    rows = 0
    while batch := cursor.fetchmany(BATCH_ROWS):
        writer.writerows(batch)
        rows += len(batch)
    return rows
