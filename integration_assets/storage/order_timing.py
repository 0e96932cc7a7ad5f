"""core.order_timing: when each current order counts as confirmed and its revenue as recognised.

The timing definitions (contracts/timing.yaml) read each order's current version as the storefront
sent it (streams/timing.py). Both order marts need those moments for every order; reading every
order's document on every run would cost the history. The table keeps, per order, the moments of the
version it was computed from: a run computes them only for the orders whose head moved since, and
for every order when the definitions or the code that applies them change (recorded in
ops.derivations). An order whose document the timing cannot read is kept with its reason, so it is
counted, and computed again only when it changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from integration_assets.storage.derivations import built_by, code_version, record_built
from integration_assets.storage.order_payloads import iter_current_orders
from integration_assets.storage.raw_log import RawLog
from integration_assets.streams import mapped as mapped_module
from integration_assets.streams import timing as timing_module
from integration_assets.streams.mapped import MappingInputError
from integration_assets.streams.timing import Timing, order_timing

TABLE = "core.order_timing"
COLUMNS = {
    "order_id": "BIGINT PRIMARY KEY",
    "sequence": "INTEGER NOT NULL",
    "currency": "VARCHAR",
    "confirmed_at": "TIMESTAMP",
    "revenue_recognised_at": "TIMESTAMP",
    "recognised_minor": "BIGINT",
    "unreadable": "VARCHAR",  # why the timing could not read the order (NULL: timed)
}
# The orders whose head moved since their moments were computed (or that have none yet).
_STALE_SQL = f"""
SELECT h.order_id FROM core.order_heads h LEFT JOIN {TABLE} t USING (order_id)
WHERE t.sequence IS DISTINCT FROM h.sequence ORDER BY h.order_id
"""


def timing_version(timing: Timing) -> str:
    return code_version(
        Path(timing_module.__file__), Path(mapped_module.__file__), Path(__file__), settings=timing
    )


def _utc_naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def _rows(con: duckdb.DuckDBPyConnection, raw_log: RawLog, timing: Timing, order_ids) -> list:
    rows = []
    for order in iter_current_orders(con, raw_log, order_ids=order_ids):
        try:
            timed = order_timing(order.payload, timing)
        except MappingInputError as unreadable:
            rows.append([order.order_id, order.sequence, None, None, None, None, str(unreadable)])
            continue
        rows.append(
            [
                order.order_id,
                order.sequence,
                timed.currency,
                _utc_naive(timed.confirmed_at),
                _utc_naive(timed.revenue_recognised_at),
                timed.recognised_minor,
                None,
            ]
        )
    return rows


def refresh_order_timing(
    con: duckdb.DuckDBPyConnection, raw_log: RawLog, timing: Timing
) -> dict[str, int]:
    """Bring core.order_timing up to date with the heads under `timing` (inside the caller's
    transaction). Returns the counts: orders covered = timed + unreadable, and how many were
    computed now."""
    version = timing_version(timing)
    if built_by(con, TABLE) != version:
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        con.execute(f"CREATE OR REPLACE TABLE {TABLE} ({columns})")
        order_ids = None
        record_built(con, TABLE, version)
    else:
        order_ids = [order_id for (order_id,) in con.execute(_STALE_SQL).fetchall()]
    rows = _rows(con, raw_log, timing, order_ids)
    if rows:
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        con.register("timed_orders", frame)
        try:
            con.execute(f"INSERT OR REPLACE INTO {TABLE} BY NAME SELECT * FROM timed_orders")
        finally:
            con.unregister("timed_orders")
    timed, unreadable = con.execute(
        f"SELECT count(*) FILTER (WHERE unreadable IS NULL), count(*) FILTER (WHERE unreadable IS NOT NULL) "
        f"FROM {TABLE}"
    ).fetchone()
    return {
        "timing_orders_read": int(timed) + int(unreadable),
        "timing_orders_timed": int(timed),
        "timing_orders_unreadable": int(unreadable),
        "timing_orders_computed": len(rows),
    }
