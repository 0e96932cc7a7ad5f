"""core.order_timing: when each current order counts as confirmed and its revenue as recognised.

The timing definitions (contracts/timing.yaml) read each order's current version as the storefront
sent it (streams/timing.py). Both order marts need those moments for every order; the table keeps
them per order (storage/per_order.py), derived again only for the orders whose head moved, and for
every order when the definitions or the code that applies them change. An order whose document the
timing cannot read is kept with its reason, so it is counted, and read again only when it changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from integration_assets.storage.derivations import code_version
from integration_assets.storage.order_payloads import CurrentOrder
from integration_assets.storage.per_order import PerOrderTable
from integration_assets.storage.raw_log import RawLog
from integration_assets.streams import mapped as mapped_module
from integration_assets.streams import timing as timing_module
from integration_assets.streams.mapped import MappingInputError
from integration_assets.streams.timestamps import naive_utc
from integration_assets.streams.timing import Timing, order_timing

TABLE = "core.order_timing"
COLUMNS = {
    "currency": "VARCHAR",
    "confirmed_at": "TIMESTAMP",
    "revenue_recognised_at": "TIMESTAMP",
    "recognised_minor": "BIGINT",
    "unreadable": "VARCHAR",  # why the timing could not read the order (NULL: timed)
}


def timing_table(timing: Timing) -> PerOrderTable:
    def derive(order: CurrentOrder) -> Sequence:
        try:
            timed = order_timing(order.payload, timing)
        except MappingInputError as unreadable:
            return [None, None, None, None, str(unreadable)]
        return [
            timed.currency,
            naive_utc(timed.confirmed_at),
            naive_utc(timed.revenue_recognised_at),
            timed.recognised_minor,
            None,
        ]

    version = code_version(
        Path(timing_module.__file__), Path(mapped_module.__file__), Path(__file__), settings=timing
    )
    return PerOrderTable(TABLE, COLUMNS, version, derive)


def refresh_order_timing(
    con: duckdb.DuckDBPyConnection, raw_log: RawLog, timing: Timing
) -> dict[str, int]:
    """Bring core.order_timing up to date with the heads under `timing` (inside the caller's
    transaction). Returns the counts: orders covered = timed + unreadable, and how many were
    computed now."""
    computed = timing_table(timing).refresh(con, raw_log)
    timed, unreadable = con.execute(
        "SELECT count(*) FILTER (WHERE unreadable IS NULL), "
        f"count(*) FILTER (WHERE unreadable IS NOT NULL) FROM {TABLE}"
    ).fetchone()
    return {
        "timing_orders_read": int(timed) + int(unreadable),
        "timing_orders_timed": int(timed),
        "timing_orders_unreadable": int(unreadable),
        "timing_orders_computed": computed,
    }
