"""core/order_events and core/orders_current: the order stream and the state derived from it."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import orjson
import pandas as pd

from integration_assets.chunks import batched
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.orders.names import (
    CHECK_CORE_BALANCE,
    CHECK_FOLD_MATCHES_HEADS,
    CHECK_NO_ORDER_MISSING,
    GATING_CHECKS,
    ORDER_EVENTS,
    ORDERS_CURRENT,
    OWNER,
    SOURCE,
    STAGING_ORDERS,
    STREAM,
    STREAM_NAME,
)
from integration_assets.storage import gates
from integration_assets.storage.balances import record_balance
from integration_assets.storage.derivations import built_by, code_version, record_built
from integration_assets.storage.order_payloads import (
    copy_payloads_from_raw,
    fill_missing_payloads,
    orders_condition,
)
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.resources import RawLogResource, WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL, table_exists
from integration_assets.streams import order_events as order_events_module
from integration_assets.streams.balances import Balance
from integration_assets.streams.order_events import (
    OrderHead,
    OrderVersion,
    apply_versions,
    fold_events,
)
from integration_assets.streams.timestamps import naive_utc, utc_now_naive

EVENT_COLUMNS = [
    "order_id",
    "sequence",
    "event_type",
    "attribute",
    "before",
    "after",
    "occurred_at",
    "observed_at",
    "source_version",
    "raw_ref",
    "batch_id",
    "run_id",
]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json(value) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# Orders whose versions and events are held at once while a batch is applied.
ORDERS_PER_CHUNK = 5000

HEAD_COLUMNS = [
    "order_id",
    "sequence",
    "updated_at",
    "payload_hash",
    "snapshot",
    "raw_ref",
    "payload",
]


@dataclass
class _Promoted:
    """What promoting a batch's orders did, summed over its chunks."""

    versions: int = 0
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    events: int = 0
    conflicts: int = 0
    head_refs: dict[str, int] = field(default_factory=dict)  # new head's raw ref -> order id


def promote_batch(con, batch_id: str, run_id: str, raw_log: RawLog) -> dict:
    """Apply one gated batch's versions on top of the current heads, inside the caller's transaction.

    Orders are independent of each other, so a batch is applied `ORDERS_PER_CHUNK` orders at a
    time: a peak-day poll holds one chunk's versions and events at once, not the whole day's. A head
    that changes takes its version's source document from raw (only this batch's new heads are
    read, in one pass over the file), so readers of current orders find it in the warehouse instead
    of reparsing raw.
    """
    order_ids = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT order_id FROM staging.storefront_orders WHERE batch_id = ? "
            "ORDER BY order_id",
            [batch_id],
        ).fetchall()
    ]
    promoted = _Promoted()
    for chunk in batched(order_ids, ORDERS_PER_CHUNK):
        _promote_orders(con, batch_id, run_id, chunk, promoted)
    copy_payloads_from_raw(con, raw_log, promoted.head_refs)
    con.execute(
        "INSERT INTO core.promoted_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            STREAM,
            batch_id,
            promoted.versions,
            promoted.applied,
            promoted.duplicates,
            promoted.stale,
            promoted.events,
            run_id,
            utc_now_naive(),
        ],
    )
    balance = Balance(
        "versions_equal_applied_duplicates_stale",
        {"versions_promoted": promoted.versions},
        {
            "applied": promoted.applied,
            "duplicates": promoted.duplicates,
            "stale_skipped": promoted.stale,
        },
    )
    record_balance(con, run_id, ORDER_EVENTS.to_user_string(), batch_id, balance)
    return {
        "versions": promoted.versions,
        "applied": promoted.applied,
        "duplicates": promoted.duplicates,
        "stale": promoted.stale,
        "events": promoted.events,
        "conflicts": promoted.conflicts,
        "balance": balance,
    }


def _promote_orders(
    con, batch_id: str, run_id: str, order_ids: tuple[int, ...], promoted: _Promoted
) -> None:
    """Apply the batch's versions of `order_ids`; new heads are written without their payload
    (`copy_payloads_from_raw` adds it)."""
    con.register("chunk_orders", pd.DataFrame({"order_id": list(order_ids)}))
    try:
        versions = con.execute(
            "SELECT order_id, updated_at, payload_hash, raw_ref, snapshot "
            "FROM staging.storefront_orders JOIN chunk_orders USING (order_id) WHERE batch_id = ?",
            [batch_id],
        ).fetchall()
        heads = {
            order_id: OrderHead(
                order_id, sequence, _utc(updated_at), digest, orjson.loads(snapshot)
            )
            for order_id, sequence, updated_at, digest, snapshot in con.execute(
                "SELECT h.order_id, h.sequence, h.updated_at, h.payload_hash, h.snapshot "
                "FROM core.order_heads h JOIN chunk_orders USING (order_id)"
            ).fetchall()
        }
    finally:
        con.unregister("chunk_orders")
    by_order: dict[int, list[OrderVersion]] = defaultdict(list)
    for order_id, updated_at, digest, raw_ref, snapshot in versions:
        by_order[order_id].append(
            OrderVersion(order_id, _utc(updated_at), digest, raw_ref, orjson.loads(snapshot))
        )

    events, new_heads, stale, conflicts = [], [], [], []
    for order_id, order_versions in sorted(by_order.items()):
        outcome = apply_versions(heads.get(order_id), order_versions)
        promoted.applied += outcome.applied_versions
        promoted.duplicates += outcome.duplicate_versions
        events.extend(outcome.events)
        stale.extend((v, outcome.head) for v in outcome.stale_versions)
        conflicts.extend(outcome.conflicts)
        if outcome.head is not None and outcome.head is not heads.get(order_id):
            new_heads.append(outcome.head)
    promoted.versions += len(versions)
    promoted.events += len(events)
    promoted.stale += len(stale)
    promoted.conflicts += len(conflicts)

    if events:
        frame = pd.DataFrame(
            [
                [
                    e.order_id,
                    e.sequence,
                    e.event_type,
                    e.attribute,
                    _json(e.before),
                    _json(e.after),
                    naive_utc(e.occurred_at),
                    naive_utc(e.observed_at),
                    e.source_version,
                    e.raw_ref,
                    batch_id,
                    run_id,
                ]
                for e in events
            ],
            columns=EVENT_COLUMNS,
        )
        con.register("new_events", frame)
        con.execute(
            f"INSERT INTO core.order_events SELECT {', '.join(EVENT_COLUMNS)} FROM new_events"
        )
        con.unregister("new_events")
    if new_heads:
        # A head is always one of this batch's versions (apply_versions only moves forward to one).
        raw_refs = {(v.order_id, v.key): v.raw_ref for vs in by_order.values() for v in vs}
        rows = []
        for head in new_heads:
            ref = raw_refs[(head.order_id, head.key)]
            promoted.head_refs[ref] = head.order_id
            rows.append(
                [
                    head.order_id,
                    head.sequence,
                    naive_utc(head.updated_at),
                    head.payload_hash,
                    _json(head.snapshot),
                    ref,
                ]
            )
        columns = [column for column in HEAD_COLUMNS if column != "payload"]
        con.register("new_heads", pd.DataFrame(rows, columns=columns))
        con.execute(
            f"INSERT OR REPLACE INTO core.order_heads ({', '.join(columns)}, payload) "
            f"SELECT {', '.join(columns)}, NULL FROM new_heads"
        )
        con.unregister("new_heads")
    for version, resolution, other_hash in conflicts:
        con.execute(
            "INSERT OR REPLACE INTO core.version_conflicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                version.order_id,
                naive_utc(version.updated_at),
                version.payload_hash,
                other_hash,
                resolution,
                version.raw_ref,
                batch_id,
                run_id,
            ],
        )
    for version, head in stale:
        con.execute(
            "INSERT OR REPLACE INTO core.stale_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                version.order_id,
                naive_utc(version.updated_at),
                version.payload_hash,
                version.raw_ref,
                batch_id,
                naive_utc(head.updated_at),
                run_id,
            ],
        )


@dg.asset(
    key=ORDER_EVENTS,
    deps=[STAGING_ORDERS],
    group_name="orders",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def order_events(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, raw_log: RawLogResource
) -> dg.MaterializeResult:
    """One row per detected change of an order, in order: created, paid, edited, fulfilled, refunded, cancelled...

    Promotes, oldest first, every staged batch that passed all blocking checks; each batch in its own
    transaction. Versions are diffed against the order's newest applied version; each change carries
    a per-order sequence number, the attribute before and after, the source version and its raw
    reference. A version older than what is already applied is recorded in `core.stale_versions`
    and never applied over newer state. Batches that failed a gate stay out until re-checked.
    `core.order_heads` keeps each order's newest applied version with its source document.
    """
    wh = warehouse.warehouse()
    log = raw_log.log()
    with wh.transaction() as con:
        # Heads of a warehouse built before order_heads held the payload: read from raw once.
        payloads_filled = fill_missing_payloads(con, log)
        batches = gates.promotable_batches(con, STREAM, GATING_CHECKS)
        blocked = gates.blocked_batches(con, STREAM)
        awaiting = gates.pending_batches(con, STREAM, GATING_CHECKS)
    if payloads_filled:
        context.log.info(f"copied the source payload of {payloads_filled} order heads from raw")
    results = []
    for batch_id in batches:
        with wh.transaction() as con:
            results.append(promote_batch(con, batch_id, context.run_id, log))
    for batch_id, check_name, reason in blocked:
        context.log.warning(f"batch {batch_id} is held back by {check_name}: {reason}")
    totals = {
        key: sum(r[key] for r in results)
        for key in ("versions", "applied", "duplicates", "stale", "events", "conflicts")
    }
    with wh.connect() as con:
        event_rows, orders = con.execute(
            "SELECT count(*), count(DISTINCT order_id) FROM core.order_events"
        ).fetchone()
        by_type = dict(
            con.execute(
                "SELECT event_type, count(*) FROM core.order_events GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        )
    return dg.MaterializeResult(
        metadata={
            "batches_promoted": len(results),
            "batches_blocked": len({b for b, _, _ in blocked}),
            "batches_awaiting_gate": len(awaiting),
            "versions_promoted": totals["versions"],
            "versions_applied": totals["applied"],
            "duplicate_versions": totals["duplicates"],
            "stale_events_skipped": totals["stale"],
            "version_conflicts": totals["conflicts"],
            "events_added": totals["events"],
            "head_payloads_backfilled": payloads_filled,
            "dagster/row_count": int(event_rows),
            "orders_with_events": int(orders),
            "events_by_type": dg.MetadataValue.json({k: int(v) for k, v in by_type.items()}),
        }
    )


@dg.asset_check(
    asset=ORDER_EVENTS,
    name=CHECK_CORE_BALANCE,
    blocking=True,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description="Every promoted version is applied, a duplicate, or stale: none vanishes.",
)
def order_events_balance(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        failing = con.execute(
            "SELECT scope, text FROM ops.count_balances WHERE asset_key = ? AND NOT holds",
            [ORDER_EVENTS.to_user_string()],
        ).fetchall()
        checked = con.execute(
            "SELECT count(*) FROM ops.count_balances WHERE asset_key = ?",
            [ORDER_EVENTS.to_user_string()],
        ).fetchone()[0]
    return dg.AssetCheckResult(
        passed=not failing,
        description="; ".join(f"batch {scope}: {text}" for scope, text in failing) or None,
        metadata={"batches_checked": int(checked), "batches_failing": len(failing)},
    )


# core.orders_current's columns and their types (declared: a fold of a few orders, all without a
# fulfilment status, must not decide the column's type).
CURRENT_TYPES = {
    "order_id": "BIGINT",
    "name": "VARCHAR",
    "email": "VARCHAR",
    "currency": "VARCHAR",
    "created_at": "TIMESTAMP",
    "financial_status": "VARCHAR",
    "fulfillment_status": "VARCHAR",
    "cancelled_at": "TIMESTAMP",
    "closed_at": "TIMESTAMP",
    "total_price_minor": "BIGINT",
    "line_count": "BIGINT",
    "units": "BIGINT",
    "fulfillment_count": "BIGINT",
    "refund_count": "BIGINT",
    "refunded_minor": "BIGINT",
    "last_sequence": "BIGINT",
}
CURRENT_COLUMNS = list(CURRENT_TYPES)


def current_row(order_id: int, state: dict, last_sequence: int) -> list:
    lines = state.get("lines") or {}
    refunds = state.get("refunds") or {}
    totals = state.get("totals") or {}
    return [
        order_id,
        state.get("name"),
        state.get("email"),
        state.get("currency"),
        state.get("created_at"),
        state.get("financial_status"),
        state.get("fulfillment_status"),
        state.get("cancelled_at"),
        state.get("closed_at"),
        totals.get("total_price_minor"),
        len(lines),
        sum(line["quantity"] for line in lines.values()),
        len(state.get("fulfillments") or {}),
        len(refunds),
        sum(r["amount_minor"] for r in refunds.values()),
        last_sequence,
    ]


def fold_orders(con, order_ids: list[int] | None = None) -> tuple[list[list], dict[int, dict]]:
    """Fold the events of `order_ids` (None: every order): their core.orders_current rows, and
    each order's folded state."""
    condition, params = orders_condition(order_ids)
    states: dict[int, dict] = {}
    last: dict[int, int] = {}
    grouped: dict[int, list] = defaultdict(list)
    for order_id, sequence, event_type, attribute, after in con.execute(
        "SELECT order_id, sequence, event_type, attribute, after FROM core.order_events "
        f"WHERE {condition} ORDER BY order_id, sequence",
        params,
    ).fetchall():
        grouped[order_id].append(
            (event_type, attribute, None if after is None else orjson.loads(after))
        )
        last[order_id] = sequence
    for order_id, events in grouped.items():
        states[order_id] = fold_events(events)
    return [
        current_row(order_id, state, last[order_id]) for order_id, state in states.items()
    ], states


# What core.orders_current is derived by: a change here rebuilds it whole once.
FOLD_VERSION = code_version(
    Path(order_events_module.__file__), Path(__file__), settings=CURRENT_COLUMNS
)

# Orders whose newest event is not the one their core.orders_current row was folded to.
_REFOLD_SQL = """
SELECT e.order_id FROM (SELECT order_id, max(sequence) AS last_sequence FROM core.order_events
                        GROUP BY order_id) e
LEFT JOIN core.orders_current c USING (order_id)
WHERE c.last_sequence IS DISTINCT FROM e.last_sequence
ORDER BY e.order_id
"""


def _current_frame(rows: list[list]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=CURRENT_COLUMNS)
    for column in ("created_at", "cancelled_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
    return frame


def refresh_orders_current(con) -> tuple[str, int]:
    """Bring core.orders_current up to date (inside the caller's transaction): fold again only the
    orders with events it has not folded, or every order when its code changed. Returns how
    ("every order" or "changed orders") and how many orders were folded."""
    if not table_exists(con, "core.orders_current") or (
        built_by(con, "core.orders_current") != FOLD_VERSION
    ):
        columns = ", ".join(f"{name} {kind}" for name, kind in CURRENT_TYPES.items())
        con.execute(f"CREATE OR REPLACE TABLE core.orders_current ({columns})")
        rows, _ = fold_orders(con)
        record_built(con, "core.orders_current", FOLD_VERSION)
        scope = "every order"
    else:
        changed = [order_id for (order_id,) in con.execute(_REFOLD_SQL).fetchall()]
        rows, _ = fold_orders(con, changed) if changed else ([], {})
        con.execute(
            "DELETE FROM core.orders_current WHERE order_id IN (SELECT unnest($orders::BIGINT[]))",
            {"orders": changed},
        )
        scope = "changed orders"
    if rows:
        con.register("folded_rows", _current_frame(rows))
        try:
            con.execute("INSERT INTO core.orders_current BY NAME SELECT * FROM folded_rows")
        finally:
            con.unregister("folded_rows")
    return scope, len(rows)


@dg.asset(
    key=ORDERS_CURRENT,
    deps=[ORDER_EVENTS],
    group_name="orders",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core", "pii": "true"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def orders_current(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Each order as it stands now, derived by folding its events in sequence (not copied from a snapshot).

    Follows the change: only the orders with events not folded yet are folded again (all of them
    when the fold's code changed), so re-materializing it is always safe and costs what changed.
    """
    with warehouse.warehouse().transaction() as con:
        scope, folded = refresh_orders_current(con)
        total = con.execute("SELECT count(*) FROM core.orders_current").fetchone()[0]
        by_status = dict(
            con.execute(
                "SELECT financial_status, count(*) FROM core.orders_current GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(total),
            "orders_folded": folded,
            "fold_scope": scope,
            "orders_by_financial_status": dg.MetadataValue.json(
                {str(k): int(v) for k, v in by_status.items()}
            ),
        }
    )


def _normalized(state: dict) -> dict:
    return {key: value for key, value in state.items() if value not in ({}, None)}


# Heads not verified at their current version (every head when the fold's code changed).
_UNVERIFIED_SQL = """
SELECT h.order_id, h.sequence, h.snapshot FROM core.order_heads h
LEFT JOIN ops.fold_verified v USING (order_id)
WHERE v.sequence IS DISTINCT FROM h.sequence
ORDER BY h.order_id
"""


@dg.asset_check(
    asset=ORDERS_CURRENT,
    name=CHECK_FOLD_MATCHES_HEADS,
    blocking=True,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description=(
        "Folding each order's events rebuilds exactly the newest applied version: the stream is "
        "complete. Each head is verified once per version (every head again when the fold's code "
        "changes); a mismatch is checked again on every run until it is mended."
    ),
)
def orders_current_matches_heads(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().transaction() as con:
        if built_by(con, "ops.fold_verified") != FOLD_VERSION:
            con.execute("DELETE FROM ops.fold_verified")
            record_built(con, "ops.fold_verified", FOLD_VERSION)
        unverified = con.execute(_UNVERIFIED_SQL).fetchall()
        _, states = fold_orders(con, [order_id for order_id, _, _ in unverified])
        mismatched = sorted(
            order_id
            for order_id, _, snapshot in unverified
            if _normalized(states.get(order_id, {})) != _normalized(orjson.loads(snapshot))
        )
        failed = set(mismatched)
        verified = [(o, sequence) for o, sequence, _ in unverified if o not in failed]
        if verified:
            con.execute(
                "INSERT OR REPLACE INTO ops.fold_verified "
                "SELECT unnest($orders::BIGINT[]), unnest($sequences::INTEGER[])",
                {"orders": [o for o, _ in verified], "sequences": [q for _, q in verified]},
            )
        missing = con.execute(
            "SELECT count(DISTINCT order_id) FROM core.order_events "
            "WHERE order_id NOT IN (SELECT order_id FROM core.order_heads)"
        ).fetchone()[0]
        heads = con.execute("SELECT count(*) FROM core.order_heads").fetchone()[0]
    return dg.AssetCheckResult(
        passed=not mismatched and not missing,
        description=(
            f"{len(mismatched)} orders differ from their head, e.g. {mismatched[:5]}"
            if mismatched
            else None
        ),
        metadata={
            "orders_checked": len(unverified),
            "orders_verified_before": int(heads) - len(unverified),
            "orders_mismatched": len(mismatched),
            "orders_without_head": int(missing),
        },
    )


@dg.asset_check(
    asset=ORDERS_CURRENT,
    name=CHECK_NO_ORDER_MISSING,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    description=(
        "Every order the storefront counts (orders/count.json?status=any at the last poll) is known here: "
        "staged or quarantined. Incremental polling cannot see an order that appears with an old updated_at."
    ),
)
def every_source_order_known(
    raw_log: RawLogResource, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    latest = raw_log.log().latest(SOURCE, STREAM_NAME)
    at_source = int(latest.details.get("orders_at_source", 0)) if latest else 0
    with warehouse.warehouse().connect() as con:
        known = con.execute(
            """
            SELECT count(*) FROM (
                SELECT CAST(order_id AS VARCHAR) AS id FROM staging.storefront_orders
                UNION
                SELECT record_key FROM ops.quarantine WHERE stream = ? AND record_key IS NOT NULL
            )
            """,
            [STREAM],
        ).fetchone()[0]
    missing = max(0, at_source - int(known))
    return dg.AssetCheckResult(
        passed=missing == 0,
        description=(
            f"the storefront has {at_source} orders, we know {known}: {missing} never seen. Materialize "
            "raw/storefront/orders with config full_sweep: true to re-read everything since initial_updated_at_min."
            if missing
            else None
        ),
        metadata={
            "orders_at_source": at_source,
            "orders_known": int(known),
            "orders_missing": missing,
        },
    )
