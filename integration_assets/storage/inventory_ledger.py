"""core.inventory_ledger and what is derived from it, set-based in DuckDB.

The rules are those of `streams/inventory_ledger.py` (the reference, in Python, that the tests hold this
module equal to): orders claim stock line by line, the warehouse's files move it, stock counts open
and correct the ledger, and available-to-promise below zero with a commitment in it is an oversell
episode. Written as SQL because they read the whole history every run: a peak day has a million
movements, and a Python object per movement made this the slowest step of the hourly run.

`rebuild(con)` runs inside the caller's transaction and replaces core.inventory_ledger,
core.inventory_positions, core.inventory_drift and core.inventory_oversells.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from integration_assets.storage.oversells import WRITE_SQL as WRITE_OVERSELLS_SQL
from integration_assets.streams.inventory_ledger import COMMITMENT_KINDS, EFFECTS

LINE_EVENT_TYPES = (
    "line_item_added",
    "line_item_removed",
    "line_item_quantity_changed",
    "line_item_changed",
)

# Each kind's sign on on hand and on committed, from the reference's table.
EFFECTS_SQL = "(VALUES " + ", ".join(f"('{k}', {h}, {c})" for k, (h, c) in EFFECTS.items()) + ")"

# What orders claim, every order and every line (before the opening stock take too: the caller
# counts those). A line's state is its last event's `after` since the order was last cancelled; an
# edit of the same SKU claims or releases the difference, anything else releases the old line and
# claims the new one; a cancellation releases each open line less what was already shipped of its SKU.
CLAIMS_SQL = f"""
CREATE OR REPLACE TEMP TABLE inventory_claims AS
WITH events AS (
    SELECT order_id, sequence, event_type, occurred_at,
           CASE WHEN attribute LIKE 'lines.%' THEN substr(attribute, 7) END AS line_id,
           after IS NOT NULL AND CAST(after AS VARCHAR) NOT IN ('null', '{{}}') AS has_line,
           after->>'sku' AS sku, CAST(after->>'quantity' AS BIGINT) AS quantity
    FROM core.order_events
    WHERE event_type IN {(*LINE_EVENT_TYPES, "order_cancelled")!r}
),
cancels AS (SELECT order_id, sequence, occurred_at FROM events WHERE event_type = 'order_cancelled'),
cleared AS (  -- each event with the newest cancellation before it
    SELECT *, max(CASE WHEN event_type = 'order_cancelled' THEN sequence END) OVER (
        PARTITION BY order_id ORDER BY sequence ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS cleared_at
    FROM events
),
lines AS (
    SELECT *, lag(sequence) OVER w AS old_sequence, lag(has_line) OVER w AS old_has_line,
           lag(sku) OVER w AS old_sku, lag(quantity) OVER w AS old_quantity
    FROM cleared WHERE event_type <> 'order_cancelled'
    WINDOW w AS (PARTITION BY order_id, line_id ORDER BY sequence)
),
changes AS (
    SELECT *, coalesce(line_id, 'None') AS line_name,
           coalesce(old_has_line AND old_sequence > coalesce(cleared_at, -1), false) AS has_old
    FROM lines
),
bookings AS (
    SELECT order_id, sequence, occurred_at,
           CASE WHEN quantity > old_quantity THEN 'sale_commitment' ELSE 'release' END AS kind,
           sku, abs(quantity - old_quantity) AS quantity, 'edit:' || line_name AS suffix
    FROM changes WHERE has_old AND has_line AND old_sku IS NOT DISTINCT FROM sku
    UNION ALL
    SELECT order_id, sequence, occurred_at, 'release', old_sku, old_quantity, 'out:' || line_name
    FROM changes WHERE has_old AND NOT (has_line AND old_sku IS NOT DISTINCT FROM sku)
    UNION ALL
    SELECT order_id, sequence, occurred_at, 'sale_commitment', sku, quantity, 'in:' || line_name
    FROM changes WHERE has_line AND NOT (has_old AND old_sku IS NOT DISTINCT FROM sku)
),
previous_cancels AS (
    SELECT *, lag(sequence) OVER (PARTITION BY order_id ORDER BY sequence) AS previous_cancel
    FROM cancels
),
open_at_cancel AS (
    SELECT c.order_id, c.sequence, c.occurred_at, any_value(c.previous_cancel) AS previous_cancel,
           l.line_id, max(l.sequence) AS last_sequence, arg_max(l.has_line, l.sequence) AS has_line,
           arg_max(l.sku, l.sequence) AS sku, arg_max(l.quantity, l.sequence) AS quantity
    FROM previous_cancels c JOIN lines l ON l.order_id = c.order_id AND l.sequence < c.sequence
    GROUP BY c.order_id, c.sequence, c.occurred_at, l.line_id
),
shipped AS (SELECT order_id, sku, sum(quantity) AS shipped FROM staging.wms_shipments GROUP BY ALL),
cancel_releases AS (
    SELECT o.order_id, o.sequence, o.occurred_at, 'release' AS kind, o.sku,
           o.quantity - least(o.quantity, coalesce(s.shipped, 0)) AS quantity,
           'cancel:' || coalesce(o.line_id, 'None') AS suffix
    FROM open_at_cancel o LEFT JOIN shipped s USING (order_id, sku)
    WHERE o.has_line AND o.last_sequence > coalesce(o.previous_cancel, -1)
)
SELECT 'order:' || order_id || ':' || sequence || ':' || suffix AS movement_id, occurred_at, sku,
       CAST(NULL AS VARCHAR) AS location, kind, quantity,
       'core/order_events ' || order_id || '#' || sequence AS source_ref, order_id,
       0 AS source_rank, row_number() OVER (ORDER BY order_id, sequence, suffix) AS source_row
FROM (SELECT * FROM bookings UNION ALL SELECT * FROM cancel_releases)
WHERE sku IS NOT NULL AND sku <> '' AND quantity > 0
"""

# The warehouse's files: receipts, shipments and sellable returns move stock at a location.
FILE_MOVEMENTS_SQL = """
CREATE OR REPLACE TEMP TABLE inventory_file_movements AS
SELECT 'receipt:' || receipt_id || ':' || sku AS movement_id, received_at AS occurred_at, sku, location,
       'receipt' AS kind, CAST(quantity AS BIGINT) AS quantity, raw_ref AS source_ref,
       CAST(NULL AS BIGINT) AS order_id, 1 AS source_rank, rowid AS source_row
FROM staging.wms_receipts
UNION ALL
SELECT 'shipment:' || shipment_id || ':' || sku, shipped_at, sku, location, 'shipment', quantity,
       raw_ref, order_id, 2, rowid
FROM staging.wms_shipments
UNION ALL
SELECT 'return:' || return_id || ':' || sku, received_at, sku, location, 'return_to_stock', quantity,
       raw_ref, order_id, 3, rowid
FROM staging.wms_return_receipts WHERE condition = 'sellable'
"""

# Stock counts, in (counted_at, count_id) order per SKU and location. After a count the ledger holds
# what was counted, so each count expects the previous count plus the file movements since it. A
# count with nothing on hand booked before it (no movement, no earlier count of units) opens the place;
# any later difference is a drift, booked as a correction. No rule explains a drift yet.
COUNTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE inventory_counts AS
WITH on_hand_moves AS (
    SELECT m.sku, m.location, m.occurred_at, m.quantity * e.on_hand AS delta
    FROM (SELECT * FROM inventory_file_movements
          QUALIFY row_number() OVER (PARTITION BY movement_id ORDER BY source_rank, source_row) = 1) m
    JOIN {EFFECTS_SQL} e(kind, on_hand, committed) USING (kind)
    WHERE m.quantity * e.on_hand <> 0
),
counts AS (  -- a count received again is read once
    SELECT count_id, sku, location, CAST(counted_quantity AS BIGINT) AS counted, counted_at, file_order
    FROM (SELECT *, rowid AS file_order FROM staging.wms_stock_counts)
    QUALIFY row_number() OVER (PARTITION BY count_id, sku, location ORDER BY file_order) = 1
),
timeline AS (  -- per place, the file movements and the counts; at the same moment, movements first
    SELECT sku, location, occurred_at AS moment, 0 AS rank, delta, 1 AS moved,
           NULL AS count_id, NULL AS counted, NULL AS file_order
    FROM on_hand_moves
    UNION ALL
    SELECT sku, location, counted_at, 1, 0, 0, count_id, counted, file_order FROM counts
),
by_files AS (  -- at each count: on hand from the files alone, and how many movements made it
    SELECT count_id, sku, location, counted, moment AS counted_at, file_order,
           sum(delta) OVER w AS files_on_hand, sum(moved) OVER w AS files_moves
    FROM timeline
    WINDOW w AS (PARTITION BY sku, location ORDER BY moment, rank, count_id, file_order
                 ROWS UNBOUNDED PRECEDING)
    QUALIFY rank = 1
),
expected AS (
    SELECT *, row_number() OVER w AS count_order,
           coalesce(lag(counted) OVER w, 0) + files_on_hand - coalesce(lag(files_on_hand) OVER w, 0)
               AS expected,
           files_moves > 0 OR coalesce(bool_or(counted <> 0) OVER (
               PARTITION BY sku, location ORDER BY counted_at, count_id, file_order
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS seen_before
    FROM by_files
    WINDOW w AS (PARTITION BY sku, location ORDER BY counted_at, count_id, file_order)
)
SELECT *, counted - expected AS delta FROM expected
"""

CORRECTION_RANK = 4  # after claims (0), receipts, shipments and returns (1-3)
CORRECTIONS_SQL = f"""
SELECT 'count:' || count_id || ':' || sku || ':' || location AS movement_id, counted_at AS occurred_at, sku, location,
       'count_correction' AS kind,
       CASE WHEN seen_before THEN counted - expected ELSE counted END AS quantity,
       CASE WHEN seen_before THEN 'count ' || count_id || ': unexplained'
            ELSE 'opening balance ' || count_id END AS source_ref,
       CAST(NULL AS BIGINT) AS order_id, {CORRECTION_RANK} AS source_rank, count_order AS source_row
FROM inventory_counts
WHERE CASE WHEN seen_before THEN counted <> expected ELSE counted <> 0 END
"""

# Every movement the ledger books, duplicates included (a file line received twice): the claims
# since the opening stock take, the files' movements and the counts' corrections.
BOOKED_SQL = f"""
CREATE OR REPLACE TEMP TABLE inventory_booked AS
SELECT * FROM inventory_claims WHERE $opening IS NULL OR occurred_at >= $opening
UNION ALL BY NAME SELECT * FROM inventory_file_movements
UNION ALL BY NAME {CORRECTIONS_SQL}
"""

# Each movement once, by its id (the first booked: claims, then files in the order they were staged).
LEDGER_SQL = f"""
CREATE OR REPLACE TABLE core.inventory_ledger AS
SELECT m.movement_id, m.occurred_at, m.sku, m.location, m.kind, m.quantity,
       m.quantity * e.on_hand AS on_hand_delta, m.quantity * e.committed AS committed_delta,
       m.source_ref, m.order_id
FROM inventory_booked m JOIN {EFFECTS_SQL} e(kind, on_hand, committed) USING (kind)
QUALIFY row_number() OVER (PARTITION BY m.movement_id ORDER BY m.source_rank, m.source_row) = 1
ORDER BY m.occurred_at, m.movement_id
"""

POSITIONS_SQL = """
CREATE OR REPLACE TABLE core.inventory_positions AS
WITH by_location AS (
    SELECT sku, coalesce(location, 'unassigned') AS location, sum(on_hand_delta) AS on_hand
    FROM core.inventory_ledger WHERE on_hand_delta <> 0 GROUP BY ALL
),
by_sku AS (
    SELECT sku, sum(on_hand) AS on_hand,
           CAST(to_json(map(list(location ORDER BY location), list(on_hand ORDER BY location))) AS VARCHAR)
               AS on_hand_by_location
    FROM by_location GROUP BY sku
)
SELECT l.sku, CAST(coalesce(b.on_hand, 0) AS BIGINT) AS on_hand,
       CAST(sum(l.committed_delta) AS BIGINT) AS committed,
       CAST(coalesce(b.on_hand, 0) - sum(l.committed_delta) AS BIGINT) AS available,
       coalesce(b.on_hand_by_location, '{}') AS on_hand_by_location
FROM core.inventory_ledger l LEFT JOIN by_sku b USING (sku)
GROUP BY l.sku, b.on_hand, b.on_hand_by_location
ORDER BY l.sku
"""

DRIFT_SQL = """
CREATE OR REPLACE TABLE core.inventory_drift AS
SELECT sku, location, counted_at, expected AS ledger_on_hand, counted, delta,
       'unexplained' AS cause,
       'counted ' || counted || ', ledger says ' || expected || ': no rule explains '
           || CASE WHEN delta > 0 THEN '+' ELSE '' END || delta AS explanation
FROM inventory_counts WHERE seen_before AND delta <> 0
ORDER BY counted_at, count_id, file_order
"""

# Oversell episodes: each stretch of a SKU's movements (in time order) with available-to-promise
# below zero, ended by the first movement that brings it back to zero or more, naming each order
# whose commitment fell inside it once, in the order they were first short. A stretch without a
# commitment (a count correction alone) is not an oversell.
EPISODES_SQL = f"""
CREATE OR REPLACE TEMP TABLE oversell_episodes AS
WITH running AS (
    SELECT sku, occurred_at, movement_id, kind, order_id,
           sum(on_hand_delta - committed_delta) OVER w AS available
    FROM core.inventory_ledger
    WINDOW w AS (PARTITION BY sku ORDER BY occurred_at, movement_id ROWS UNBOUNDED PRECEDING)
),
flagged AS (
    SELECT *, available < 0 AS below,
           row_number() OVER (PARTITION BY sku ORDER BY occurred_at, movement_id) AS position,
           coalesce(lag(available < 0) OVER (PARTITION BY sku ORDER BY occurred_at, movement_id),
                    false) AS was_below
    FROM running
),
stretches AS (
    SELECT *, sum(CAST(below AND NOT was_below AS INTEGER))
                  OVER (PARTITION BY sku ORDER BY position ROWS UNBOUNDED PRECEDING) AS stretch
    FROM flagged
),
episodes AS (
    SELECT sku, stretch, min(occurred_at) FILTER (WHERE below) AS started_at,
           min(occurred_at) FILTER (WHERE NOT below) AS ended_at,
           min(available) FILTER (WHERE below) AS lowest_available
    FROM stretches WHERE stretch > 0 GROUP BY sku, stretch
),
short AS (
    SELECT sku, stretch, order_id, min(position) AS first_short
    FROM stretches
    WHERE stretch > 0 AND below AND order_id IS NOT NULL AND kind IN {COMMITMENT_KINDS!r}
    GROUP BY ALL
),
named AS (
    SELECT sku, stretch, list(order_id ORDER BY first_short) AS orders FROM short GROUP BY ALL
)
SELECT row_number() OVER (ORDER BY e.started_at, e.sku, e.stretch) - 1 AS episode, e.sku,
       e.started_at, e.ended_at, e.lowest_available, n.orders
FROM episodes e JOIN named n USING (sku, stretch)
WHERE $judged
"""


@dataclass(frozen=True)
class InventoryFigures:
    """What one rebuild found, for the asset's metadata and its count balance."""

    movements_derived: int  # every claim, file movement and count correction derived
    ledger_entries: int
    duplicates: int
    before_opening: int
    opening: datetime | None  # the first stock take; None: oversell is not judged yet
    by_kind: dict[str, int]
    oversell_episodes: int
    drifts: int
    unexplained_drifts: int


def rebuild(con: duckdb.DuckDBPyConnection) -> InventoryFigures:
    """Replace the ledger, positions, drift and oversell tables from the order stream and the
    warehouse's staged files (inside the caller's transaction)."""
    con.execute(CLAIMS_SQL)
    con.execute(FILE_MOVEMENTS_SQL)
    con.execute(COUNTS_SQL)
    # The ledger opens with the warehouse's first stock take: claims made before it are already
    # reflected on the shelves (or long gone), so they are counted, not booked.
    (opening,) = con.execute("SELECT min(counted_at) FROM staging.wms_stock_counts").fetchone()
    con.execute(BOOKED_SQL, {"opening": opening})
    con.execute(LEDGER_SQL)
    con.execute(POSITIONS_SQL)
    con.execute(DRIFT_SQL)
    # Before the first stock take, on hand is unknown: judging available-to-promise would be a guess.
    con.execute(EPISODES_SQL, {"judged": opening is not None})
    con.execute(WRITE_OVERSELLS_SQL)
    claims, before_opening, file_moves, corrections, duplicates = con.execute(
        f"""
        SELECT (SELECT count(*) FROM inventory_claims),
               (SELECT count(*) FROM inventory_claims WHERE occurred_at < $opening),
               (SELECT count(*) FROM inventory_file_movements),
               (SELECT count(*) FROM inventory_booked WHERE source_rank = {CORRECTION_RANK}),
               (SELECT count(*) - count(DISTINCT movement_id) FROM inventory_booked)
        """,
        {"opening": opening},
    ).fetchone()
    by_kind = dict(
        con.execute(
            "SELECT kind, count(*) FROM core.inventory_ledger GROUP BY kind ORDER BY kind"
        ).fetchall()
    )
    ledger_entries = sum(by_kind.values())
    derived = claims + file_moves + corrections
    episodes, drifts, unexplained = con.execute(
        "SELECT (SELECT count(*) FROM core.inventory_oversells), (SELECT count(*) FROM core.inventory_drift), "
        "(SELECT count(*) FROM core.inventory_drift WHERE cause = 'unexplained')"
    ).fetchone()
    for table in (
        "inventory_claims",
        "inventory_file_movements",
        "inventory_counts",
        "inventory_booked",
        "oversell_episodes",
    ):
        con.execute(f"DROP TABLE {table}")
    return InventoryFigures(
        movements_derived=derived,
        ledger_entries=ledger_entries,
        duplicates=int(duplicates),
        before_opening=before_opening,
        opening=opening,
        by_kind={kind: int(n) for kind, n in by_kind.items()},
        oversell_episodes=int(episodes),
        drifts=int(drifts),
        unexplained_drifts=int(unexplained),
    )
