"""Thin warehouse reading for explain: rows as dicts, and tables that may not exist yet.

Many core tables are created by the asset that first materializes them, so a young warehouse (or one
where a stream never ran) lacks them: explain then says nothing about that stream rather than fail.
"""

from __future__ import annotations

from typing import Any

import duckdb

from integration_assets.storage.warehouse import table_exists


def rows(
    con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    """`sql` (which reads `table`) as a list of dicts; [] when `table` does not exist yet."""
    if not table_exists(con, table):
        return []
    cursor = con.execute(sql, params or [])
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
