"""Tables kept up to date by change, not rebuilt whole: which version of their code built them.

A derived table that follows the change (core.orders_current folds only the orders with new events)
is right only while the code that derives it is the code that built it. Its version is a digest of
that code; when the recorded version differs (or none is recorded), the table is rebuilt whole once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from integration_assets.streams.timestamps import utc_now_naive


def code_version(*sources: Path, settings: object = ()) -> str:
    """A digest of the modules a derivation runs, and of its settings (such as its columns)."""
    digest = hashlib.sha256(repr(settings).encode())
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def built_by(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = con.execute("SELECT version FROM ops.derivations WHERE name = ?", [name]).fetchone()
    return None if row is None else row[0]


def record_built(con: duckdb.DuckDBPyConnection, name: str, version: str) -> None:
    con.execute(
        "INSERT OR REPLACE INTO ops.derivations VALUES (?, ?, ?)", [name, version, utc_now_naive()]
    )
