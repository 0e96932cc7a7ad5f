"""core/returns: one row per return, request -> approval -> in transit -> receipt -> refund, and the
returns stuck in a stage too long (check no_stuck_returns, WARN)."""

from datetime import UTC, datetime

import dagster as dg
import orjson
import pandas as pd

from integration_assets.contracts.loader import CONTRACTS_DIR
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.orders.names import ORDER_EVENTS
from integration_assets.defs.payments.names import GATING_CHECKS as PAYMENTS_GATING_CHECKS
from integration_assets.defs.payments.names import STAGING_PAYMENTS
from integration_assets.defs.warehouse.names import STAGING_BY_KIND
from integration_assets.storage.payments_ledger import latest_objects
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.returns import (
    STUCK_RULES,
    ReturnRow,
    build_returns,
    load_thresholds,
    stage_counts,
)

RETURNS = dg.AssetKey(["core", "returns"])
GROUP = "returns"
OWNER = "customer-service@example.com"
CHECK_NO_STUCK = "no_stuck_returns"
THRESHOLDS_FILE = CONTRACTS_DIR / "returns.yaml"

COLUMNS = [
    ("return_id", "VARCHAR", "the rma_id, a receipt's return_id, or refund:<refund id>:<sku>"),
    ("source", "VARCHAR", "rma | receipt_without_rma | refund_without_return"),
    ("rma_id", "VARCHAR", "the warehouse's return authorization, if any"),
    ("order_id", "BIGINT", "the storefront order"),
    ("sku", "VARCHAR", None),
    ("quantity", "BIGINT", "authorized (or received, or refunded) units"),
    ("requested_at", "TIMESTAMP", "RMA requested (UTC)"),
    ("approved_at", "TIMESTAMP", "RMA approved"),
    ("shipped_at", "TIMESTAMP", "handed to the carrier by the customer: in transit"),
    ("carrier", "VARCHAR", None),
    ("tracking_number", "VARCHAR", None),
    ("received_at", "TIMESTAMP", "received back at the warehouse (return receipt)"),
    ("received_quantity", "BIGINT", None),
    ("condition", "VARCHAR", "sellable | damaged"),
    ("refunded_at", "TIMESTAMP", "the storefront's refund (refund_created)"),
    ("provider_refunded_at", "TIMESTAMP", "the payment provider's first refund of the order"),
    (
        "stage",
        "VARCHAR",
        "the furthest stage reached: requested, approved, in_transit, received, refunded",
    ),
    ("stage_entered_at", "TIMESTAMP", None),
    ("age_hours", "DOUBLE", "hours in the current stage as of the newest time any source has seen"),
    (
        "flags",
        "VARCHAR[]",
        "stuck rules and notes (receipt_without_rma, refund_without_return, damaged)",
    ),
    ("as_of", "TIMESTAMP", "the newest timestamp any source has seen"),
]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def read_sources(con) -> dict:
    """The inputs of build_returns from staging and core, plus the newest time any source has seen."""
    rma_rows = [
        {
            "rma_id": rma_id,
            "order_id": order_id,
            "sku": sku,
            "quantity": quantity,
            "requested_at": _utc(requested),
            "approved_at": _utc(approved),
            "carrier": carrier,
            "tracking_number": tracking,
            "shipped_at": _utc(shipped),
            "seq": seq,
        }
        for rma_id, order_id, sku, quantity, requested, approved, carrier, tracking, shipped, seq in con.execute(
            """
            SELECT r.rma_id, r.order_id, r.sku, r.quantity, r.requested_at, r.approved_at, r.carrier,
                   r.tracking_number, r.shipped_at,
                   row_number() OVER (ORDER BY f.name, f.staged_at, r.line) AS seq
            FROM staging.wms_return_authorizations r
            JOIN staging.warehouse_files f ON f.sha256 = r.file_sha256 AND f.status = 'staged'
            """
        ).fetchall()
    ]
    receipts = [
        {
            "return_id": return_id,
            "order_id": order_id,
            "sku": sku,
            "quantity": quantity,
            "condition": condition,
            "received_at": _utc(at),
        }
        for return_id, order_id, sku, quantity, condition, at in con.execute(
            "SELECT return_id, order_id, sku, quantity, condition, received_at FROM staging.wms_return_receipts"
        ).fetchall()
    ]
    sku_of_line: dict[tuple[int, str], str] = {}
    # Only the lines of orders with a refund: a refund names its lines by id, the SKU is on the line.
    for order_id, attribute, before, after in con.execute(
        "SELECT order_id, attribute, before, after FROM core.order_events "
        "WHERE attribute LIKE 'lines.%' AND order_id IN "
        "(SELECT order_id FROM core.order_events WHERE event_type = 'refund_created') "
        "ORDER BY order_id, sequence"
    ).fetchall():
        for payload in (before, after):
            value = orjson.loads(payload) if payload else None
            if isinstance(value, dict) and value.get("sku"):
                sku_of_line[(order_id, attribute.split(".", 1)[1])] = value["sku"]
    storefront_refunds = []
    for order_id, attribute, after, occurred_at in con.execute(
        "SELECT order_id, attribute, after, occurred_at FROM core.order_events "
        "WHERE event_type = 'refund_created' ORDER BY order_id, sequence"
    ).fetchall():
        refund = orjson.loads(after) if after else {}
        skus: dict[str | None, int] = {}
        for line_id, quantity in (refund.get("lines") or {}).items():
            # A line first seen already refunded to 0 never reaches core: its SKU is unknown (None).
            sku = sku_of_line.get((order_id, str(line_id)))
            skus[sku] = skus.get(sku, 0) + int(quantity)
        created = refund.get("created_at")
        storefront_refunds.append(
            {
                "refund_id": attribute.split(".", 1)[-1],
                "order_id": order_id,
                "created_at": _utc(datetime.fromisoformat(created))
                if created
                else _utc(occurred_at),
                "skus": skus,
            }
        )
    provider_refunds = [
        {
            "refund_id": refund["id"],
            "order_id": int(refund["metadata"]["shopify_order_id"]),
            "created_at": datetime.fromtimestamp(int(refund["created"]), UTC),
        }
        for refund in latest_objects(con, PAYMENTS_GATING_CHECKS, "refunds")
        if (refund.get("metadata") or {}).get("shopify_order_id")
        and refund.get("status", "succeeded") == "succeeded"
    ]
    # The newest time any source has seen: the ages are measured against it, never the wall clock.
    newest = [
        _utc(value)
        for (value,) in con.execute(
            """
            SELECT max(occurred_at) FROM core.order_events
            UNION ALL SELECT max(shipped_at) FROM staging.wms_shipments
            UNION ALL SELECT max(received_at) FROM staging.wms_receipts
            UNION ALL SELECT max(counted_at) FROM staging.wms_stock_counts
            UNION ALL SELECT max(received_at) FROM staging.wms_return_receipts
            UNION ALL SELECT max(greatest(requested_at, approved_at, shipped_at))
                FROM staging.wms_return_authorizations
            """
        ).fetchall()
        if value is not None
    ]
    newest += [r["created_at"] for r in provider_refunds]
    return {
        "rma_rows": rma_rows,
        "receipts": receipts,
        "storefront_refunds": storefront_refunds,
        "provider_refunds": provider_refunds,
        "as_of": max(newest, default=None),
    }


def _frame(rows: list[ReturnRow], as_of: datetime | None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            [
                r.return_id,
                r.source,
                r.rma_id,
                r.order_id,
                r.sku,
                r.quantity,
                _naive(r.requested_at),
                _naive(r.approved_at),
                _naive(r.shipped_at),
                r.carrier,
                r.tracking_number,
                _naive(r.received_at),
                r.received_quantity,
                r.condition,
                _naive(r.refunded_at),
                _naive(r.provider_refunded_at),
                r.stage,
                _naive(r.stage_entered_at),
                r.age_hours,
                list(r.flags),
                _naive(as_of),
            ]
            for r in rows
        ],
        columns=[name for name, _, _ in COLUMNS],
    )


def _write(con, frame: pd.DataFrame) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE core.returns ("
        + ", ".join(f"{name} {sql_type}" for name, sql_type, _ in COLUMNS)
        + ")"
    )
    if len(frame):
        con.register("rows_in", frame)
        con.execute("INSERT INTO core.returns SELECT * FROM rows_in")
        con.unregister("rows_in")


@dg.asset(
    key=RETURNS,
    deps=[
        STAGING_BY_KIND["return_authorizations"],
        STAGING_BY_KIND["return_receipts"],
        ORDER_EVENTS,
        STAGING_PAYMENTS,
    ],
    group_name=GROUP,
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "core"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(name, sql_type, description=description)
                for name, sql_type, description in COLUMNS
            ]
        ),
        "thresholds": str(THRESHOLDS_FILE.name),
    },
)
def returns(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per return (`core.returns`): the warehouse's return authorizations (RMA, newest row per
    rma_id) and return receipts joined with the storefront's refunds and the payment provider's, with
    the furthest stage reached (requested, approved, in_transit, received, refunded), the hours spent
    in it as of the newest time any source has seen, and flags. Receipts without an RMA and refunds
    without any return get rows of their own. Rebuilt whole every run.
    """
    thresholds = load_thresholds(THRESHOLDS_FILE)
    with warehouse.warehouse().transaction() as con:
        sources = read_sources(con)
        rows = build_returns(
            sources["rma_rows"],
            sources["receipts"],
            sources["storefront_refunds"],
            sources["provider_refunds"],
            thresholds,
            sources["as_of"],
        )
        _write(con, _frame(rows, sources["as_of"]))
    stuck = [r for r in rows if r.stuck]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "returns_per_stage": dg.MetadataValue.json(stage_counts(rows)),
            "rows_per_source": dg.MetadataValue.json(
                {s: sum(1 for r in rows if r.source == s) for s in sorted({r.source for r in rows})}
            ),
            "stuck_returns": len(stuck),
            "as_of": sources["as_of"].isoformat() if sources["as_of"] else "no data yet",
        }
    )


@dg.asset_check(
    asset=RETURNS,
    name=CHECK_NO_STUCK,
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
    blocking=False,
    description=(
        "No return is stuck: received but not refunded, refunded but never received, or approved "
        "but not shipped back for longer than the thresholds in contracts/returns.yaml."
    ),
)
def no_stuck_returns(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        rows = con.execute(
            "SELECT return_id, order_id, sku, stage, age_hours, flags FROM core.returns "
            f"WHERE len(list_intersect(flags, {list(STUCK_RULES)!r})) > 0 ORDER BY order_id, return_id"
        ).fetchall()
        per_stage = dict(
            con.execute("SELECT stage, count(*) FROM core.returns GROUP BY stage").fetchall()
        )
    stuck = [
        f"{rule}: {return_id} (order {order_id}, {sku}) {age_hours:g} h in {stage}"
        for return_id, order_id, sku, stage, age_hours, flags in rows
        for rule in flags
        if rule in STUCK_RULES
    ]
    return dg.AssetCheckResult(
        passed=not stuck,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(stuck) or None,
        metadata={
            "stuck_returns": len(rows),
            "returns_per_stage": dg.MetadataValue.json(per_stage),
            **{rule: sum(1 for s in stuck if s.startswith(f"{rule}:")) for rule in STUCK_RULES},
        },
    )
