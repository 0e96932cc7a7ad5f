"""Tables with one row per current order, derived from the order's source document, kept up to date by
change.

Several readers need something of every current order's document (its timing moments, its
customer). Reading every document on every run costs the history. A per-order table keeps each
order's derived row with the head version it was derived from: a refresh derives rows only for the
orders whose head moved since, and for every order when the table's version (the deriving code and
its settings, recorded in ops.derivations) changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from integration_assets.storage.derivations import built_by, record_built
from integration_assets.storage.order_payloads import CurrentOrder, iter_current_orders
from integration_assets.storage.raw_log import RawLog

KEY_COLUMNS = {"order_id": "BIGINT PRIMARY KEY", "sequence": "INTEGER NOT NULL"}
ROWS_PER_INSERT = 10_000  # derived rows held at once while they are written


@dataclass(frozen=True)
class PerOrderTable:
    name: str  # e.g. "core.order_timing"
    columns: Mapping[str, str]  # the derived columns and their DuckDB types
    version: str  # a digest of the deriving code and its settings
    derive: Callable[
        [CurrentOrder], Sequence
    ]  # the derived values of one order, in `columns` order

    def _stale_sql(self) -> str:
        """The orders whose head moved since their row was derived (or that have none yet)."""
        return (
            f"SELECT h.order_id FROM core.order_heads h LEFT JOIN {self.name} t USING (order_id) "
            "WHERE t.sequence IS DISTINCT FROM h.sequence ORDER BY h.order_id"
        )

    def refresh(self, con: duckdb.DuckDBPyConnection, raw_log: RawLog) -> int:
        """Bring the table up to date with core.order_heads (inside the caller's transaction); returns
        how many orders were derived now."""
        if built_by(con, self.name) != self.version:
            columns = {**KEY_COLUMNS, **self.columns}
            declared = ", ".join(f"{name} {kind}" for name, kind in columns.items())
            con.execute(f"CREATE OR REPLACE TABLE {self.name} ({declared})")
            record_built(con, self.name, self.version)
            order_ids = None
        else:
            order_ids = [order_id for (order_id,) in con.execute(self._stale_sql()).fetchall()]
        # The documents are read through one result set on `con`; the rows are written once it is
        # consumed (a statement in between would replace it). Derived rows are small.
        rows = [
            [order.order_id, order.sequence, *self.derive(order)]
            for order in iter_current_orders(con, raw_log, order_ids=order_ids)
        ]
        for start in range(0, len(rows), ROWS_PER_INSERT):
            self._write(con, rows[start : start + ROWS_PER_INSERT])
        return len(rows)

    def _write(self, con: duckdb.DuckDBPyConnection, rows: list[list]) -> None:
        frame = pd.DataFrame(rows, columns=[*KEY_COLUMNS, *self.columns])
        con.register("derived_rows", frame)
        try:
            con.execute(f"INSERT OR REPLACE INTO {self.name} BY NAME SELECT * FROM derived_rows")
        finally:
            con.unregister("derived_rows")
