"""Scratch copies of a warehouse: the planners run against these, never against the live file.

A copy is taken through one read-only connection (`COPY FROM DATABASE`), so a pipeline holding the
live file for writing makes us wait (and, past the lock wait, say so in one sentence), and the copy
is a consistent snapshot rather than a half-written file.
"""

from __future__ import annotations

from pathlib import Path

from integration_assets.storage.warehouse import Warehouse


def copy_warehouse(source: Warehouse, destination: Path) -> Warehouse:
    """A full copy of `source` at `destination` (which must not exist), opened read-only on the source."""
    destination = Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} exists: a scratch copy goes into a new file")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with source.connect(read_only=True) as con:
        source_name = con.execute("SELECT current_database()").fetchone()[0]
        con.execute(f"ATTACH '{destination}' AS scratch_copy (READ_WRITE)")
        try:
            con.execute(f'COPY FROM DATABASE "{source_name}" TO scratch_copy')
        finally:
            con.execute("DETACH scratch_copy")
    return Warehouse(destination)


def without_outbox_history(warehouse: Warehouse) -> Warehouse:
    """Empty the copy's outbox and mapping quarantine: planning then sees no delivery history."""
    with warehouse.transaction() as con:
        con.execute("DELETE FROM ops.outbox")
        con.execute("DELETE FROM ops.mapping_quarantine")
    return warehouse


def with_outbox_of(warehouse: Warehouse, history: Warehouse) -> Warehouse:
    """Replace the copy's outbox with `history`'s (another scratch copy): planning as the live run would."""
    with history.connect(read_only=True) as con:
        rows = con.execute("SELECT * FROM ops.outbox").df()
    with warehouse.transaction() as con:
        con.execute("DELETE FROM ops.outbox")
        con.execute("DELETE FROM ops.mapping_quarantine")
        con.register("outbox_history", rows)
        con.execute("INSERT INTO ops.outbox BY NAME SELECT * FROM outbox_history")
        con.unregister("outbox_history")
    return warehouse
