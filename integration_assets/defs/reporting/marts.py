"""reporting/orders_per_day and reporting/order_lifecycle, rebuilt whole from core on every run."""

import dagster as dg

from integration_assets.defs.orders.names import ORDER_EVENTS, ORDERS_CURRENT
from integration_assets.storage.balances import record_balance
from integration_assets.storage.resources import WarehouseResource
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.balances import Balance

ORDERS_PER_DAY = dg.AssetKey(["reporting", "orders_per_day"])
ORDER_LIFECYCLE = dg.AssetKey(["reporting", "order_lifecycle"])
OWNER = "finance-reporting@example.com"

ORDERS_PER_DAY_SQL = """
CREATE OR REPLACE TABLE reporting.orders_per_day AS
SELECT
    CAST(created_at AS DATE) AS day,
    currency,
    count(*) AS orders,
    count(*) FILTER (WHERE cancelled_at IS NOT NULL) AS cancelled_orders,
    count(*) FILTER (WHERE financial_status IN ('paid', 'partially_refunded', 'refunded')) AS paid_orders,
    count(*) FILTER (WHERE fulfillment_status = 'fulfilled') AS fulfilled_orders,
    coalesce(sum(total_price_minor) FILTER (WHERE cancelled_at IS NULL), 0) AS gross_sales_minor,
    coalesce(sum(refunded_minor), 0) AS refunded_minor,
    coalesce(sum(total_price_minor) FILTER (WHERE cancelled_at IS NULL), 0) - coalesce(sum(refunded_minor), 0) AS net_sales_minor,
    coalesce(sum(units), 0) AS units
FROM core.orders_current
GROUP BY ALL
ORDER BY day, currency
"""

ORDER_LIFECYCLE_SQL = """
CREATE OR REPLACE TABLE reporting.order_lifecycle AS
WITH milestones AS (
    SELECT
        order_id,
        min(occurred_at) FILTER (WHERE event_type = 'order_created') AS created_at,
        min(occurred_at) FILTER (WHERE event_type = 'order_paid') AS paid_at,
        min(occurred_at) FILTER (WHERE event_type = 'fulfillment_created') AS first_fulfillment_at,
        min(occurred_at) FILTER (WHERE event_type = 'order_fulfilled') AS fulfilled_at,
        min(occurred_at) FILTER (WHERE event_type = 'refund_created') AS first_refund_at,
        min(occurred_at) FILTER (WHERE event_type = 'order_cancelled') AS cancelled_at,
        count(*) FILTER (WHERE event_type LIKE 'line_item_%' AND sequence > 1
                         AND observed_at > (SELECT min(e2.observed_at) FROM core.order_events e2 WHERE e2.order_id = e.order_id)) AS line_edits,
        count(*) FILTER (WHERE event_type = 'shipping_address_updated') AS address_updates,
        count(*) AS events
    FROM core.order_events e
    GROUP BY order_id
)
SELECT
    *,
    round(date_diff('second', created_at, paid_at) / 3600.0, 2) AS hours_created_to_paid,
    round(date_diff('second', paid_at, first_fulfillment_at) / 3600.0, 2) AS hours_paid_to_first_fulfillment,
    round(date_diff('second', paid_at, fulfilled_at) / 3600.0, 2) AS hours_paid_to_fulfilled,
    round(date_diff('second', fulfilled_at, first_refund_at) / 3600.0, 2) AS hours_fulfilled_to_refund
FROM milestones
ORDER BY order_id
"""


@dg.asset(
    key=ORDERS_PER_DAY,
    deps=[ORDERS_CURRENT],
    group_name="reporting",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
)
def orders_per_day(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Orders, cancellations, gross and net sales (integer minor units) per day of creation (UTC) and currency."""
    with warehouse.warehouse().transaction() as con:
        con.execute(ORDERS_PER_DAY_SQL)
        days, mart_orders = con.execute(
            "SELECT count(*), coalesce(sum(orders), 0) FROM reporting.orders_per_day"
        ).fetchone()
        current = con.execute("SELECT count(*) FROM core.orders_current").fetchone()[0]
        balance = Balance(
            "mart_orders_equal_current_orders",
            {"orders_in_mart": int(mart_orders)},
            {"orders_current": int(current)},
        )
        record_balance(con, context.run_id, ORDERS_PER_DAY.to_user_string(), "run", balance)
        preview = con.execute(
            "SELECT * FROM reporting.orders_per_day ORDER BY day DESC LIMIT 10"
        ).df()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(days),
            "orders": int(mart_orders),
            "balance": balance.as_text(),
            "preview": dg.MetadataValue.md(
                preview.to_markdown(index=False) if not preview.empty else "(empty)"
            ),
        }
    )


@dg.asset(
    key=ORDER_LIFECYCLE,
    deps=[ORDER_EVENTS],
    group_name="reporting",
    owners=[OWNER],
    kinds={"duckdb"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
)
def order_lifecycle(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Per order: when it was created, paid, fulfilled, refunded or cancelled, and the hours between the steps."""
    with warehouse.warehouse().transaction() as con:
        con.execute(ORDER_LIFECYCLE_SQL)
        rows, median_paid_to_fulfilled = con.execute(
            "SELECT count(*), median(hours_paid_to_fulfilled) FROM reporting.order_lifecycle"
        ).fetchone()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "median_hours_paid_to_fulfilled": float(median_paid_to_fulfilled)
            if median_paid_to_fulfilled is not None
            else -1.0,
        }
    )


@dg.asset_check(
    asset=ORDERS_PER_DAY,
    name="orders_reconcile_with_core",
    pool=WAREHOUSE_POOL,
    description="The mart counts every current order exactly once.",
)
def orders_per_day_reconciles(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.warehouse().connect() as con:
        mart = con.execute(
            "SELECT coalesce(sum(orders), 0) FROM reporting.orders_per_day"
        ).fetchone()[0]
        current = con.execute("SELECT count(*) FROM core.orders_current").fetchone()[0]
    return dg.AssetCheckResult(
        passed=bool(mart == current),
        metadata={"orders_in_mart": int(mart), "orders_current": int(current)},
    )


mart_checks = [orders_per_day_reconciles]
