"""reporting/orders_per_day and reporting/order_lifecycle, rebuilt whole from core on every run (set-based
SQL; the per-order timing moments come from core.order_timing, kept up to date by change).

Confirmation and revenue recognition follow the timing definitions (contracts/timing.yaml), applied
by streams/timing.py to each order's current version as the storefront sent it; both marts say in
their metadata which version and choices they applied. Their columns are described in the UI by the
glossary (contracts/glossary.yaml, the shared vocabulary).
"""

import dagster as dg
import duckdb

from integration_assets.contracts.glossary import column_schema, default_glossary
from integration_assets.contracts.timing import TimingDefinitions, load_timing
from integration_assets.defs.automation.conditions import CHECK_WITH_ITS_ASSET, FOLLOW_UPSTREAM
from integration_assets.defs.orders.names import ORDER_EVENTS, ORDERS_CURRENT
from integration_assets.storage.balances import record_balance
from integration_assets.storage.order_timing import refresh_order_timing
from integration_assets.storage.raw_log import RawLog
from integration_assets.storage.reporting_postgres import mart_from_duckdb
from integration_assets.storage.resources import (
    RawLogResource,
    ReportingDatabaseResource,
    WarehouseResource,
)
from integration_assets.storage.warehouse import WAREHOUSE_POOL
from integration_assets.streams.balances import Balance

ORDERS_PER_DAY = dg.AssetKey(["reporting", "orders_per_day"])
ORDER_LIFECYCLE = dg.AssetKey(["reporting", "order_lifecycle"])
# The tables (in DuckDB, and in PostgreSQL when configured) and the key each row is published under.
ORDERS_PER_DAY_TABLE, ORDERS_PER_DAY_TABLE_KEY = "reporting.orders_per_day", ("day", "currency")
ORDER_LIFECYCLE_TABLE, ORDER_LIFECYCLE_TABLE_KEY = "reporting.order_lifecycle", ("order_id",)
OWNER = "finance-ops@example.com"  # the registry's finance (contracts/ownership.yaml)

TIMING_VIEW = "order_timing"
TIMING_COLUMNS = [
    "order_id",
    "currency",
    "confirmed_at",
    "revenue_recognised_at",
    "recognised_minor",
]

# The created-day figures, then what was confirmed and recognised on each day (UTC), by the timing
# definitions. A day can have confirmations or recognised revenue and no new order (orders = 0).
ORDERS_PER_DAY_SQL = f"""
CREATE OR REPLACE TABLE reporting.orders_per_day AS
WITH created AS (
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
),
confirmed AS (
    SELECT CAST(confirmed_at AS DATE) AS day, currency, count(*) AS confirmed_orders
    FROM {TIMING_VIEW} WHERE confirmed_at IS NOT NULL GROUP BY ALL
),
recognised AS (
    SELECT CAST(revenue_recognised_at AS DATE) AS day, currency,
           count(*) AS revenue_recognised_orders, sum(recognised_minor) AS recognised_revenue_minor
    FROM {TIMING_VIEW} WHERE revenue_recognised_at IS NOT NULL GROUP BY ALL
)
SELECT
    day,
    currency,
    coalesce(orders, 0) AS orders,
    coalesce(cancelled_orders, 0) AS cancelled_orders,
    coalesce(paid_orders, 0) AS paid_orders,
    coalesce(fulfilled_orders, 0) AS fulfilled_orders,
    coalesce(gross_sales_minor, 0) AS gross_sales_minor,
    coalesce(refunded_minor, 0) AS refunded_minor,
    coalesce(net_sales_minor, 0) AS net_sales_minor,
    coalesce(units, 0) AS units,
    coalesce(confirmed_orders, 0) AS confirmed_orders,
    coalesce(revenue_recognised_orders, 0) AS revenue_recognised_orders,
    CAST(coalesce(recognised_revenue_minor, 0) AS BIGINT) AS recognised_revenue_minor
FROM created
FULL OUTER JOIN confirmed USING (day, currency)
FULL OUTER JOIN recognised USING (day, currency)
ORDER BY day, currency
"""

ORDER_LIFECYCLE_SQL = f"""
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
    m.*,
    round(date_diff('second', m.created_at, m.paid_at) / 3600.0, 2) AS hours_created_to_paid,
    round(date_diff('second', m.paid_at, m.first_fulfillment_at) / 3600.0, 2) AS hours_paid_to_first_fulfillment,
    round(date_diff('second', m.paid_at, m.fulfilled_at) / 3600.0, 2) AS hours_paid_to_fulfilled,
    round(date_diff('second', m.fulfilled_at, m.first_refund_at) / 3600.0, 2) AS hours_fulfilled_to_refund,
    t.confirmed_at,
    t.revenue_recognised_at
FROM milestones m
LEFT JOIN {TIMING_VIEW} t USING (order_id)
ORDER BY order_id
"""


def register_order_timing(
    con: duckdb.DuckDBPyConnection, raw_log: RawLog, definitions: TimingDefinitions
) -> dict[str, int]:
    """Register the view `order_timing` (each current order's moments under the definitions) on
    `con`, after bringing core.order_timing up to date; returns the counts: orders covered = timed +
    unreadable (an order whose payload the timing cannot read is left out of the timing figures, and
    counted)."""
    counts = refresh_order_timing(con, raw_log, definitions.timing)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {TIMING_VIEW} AS SELECT {', '.join(TIMING_COLUMNS)} "
        "FROM core.order_timing WHERE unreadable IS NULL"
    )
    return counts


@dg.asset(
    key=ORDERS_PER_DAY,
    deps=[ORDERS_CURRENT],
    group_name="reporting",
    owners=[OWNER],
    kinds={"duckdb", "postgres"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def orders_per_day(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    raw_log: RawLogResource,
    reporting_database: ReportingDatabaseResource,
) -> dg.MaterializeResult:
    """Orders, cancellations, gross and net sales (integer minor units) per day of creation (UTC) and
    currency; and, by the timing definitions (contracts/timing.yaml, named in the metadata), the
    orders confirmed and the revenue recognised (the total as sold, as invoiced) on each day (UTC).
    Also published to PostgreSQL when REPORTING_DATABASE_URL is set (`published_to` says where)."""
    definitions = load_timing()
    with warehouse.warehouse().transaction() as con:
        timing_counts = register_order_timing(con, raw_log.log(), definitions)
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
        columns = column_schema(con, ORDERS_PER_DAY_TABLE, default_glossary())
        mart = (
            mart_from_duckdb(con, ORDERS_PER_DAY_TABLE, ORDERS_PER_DAY_TABLE_KEY)
            if reporting_database.target() is not None
            else None
        )
    published = reporting_database.publish(mart)  # after the DuckDB commit
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(days),
            "dagster/column_schema": columns,
            "orders": int(mart_orders),
            "balance": balance.as_text(),
            **definitions.as_metadata(),
            **timing_counts,
            "preview": dg.MetadataValue.md(
                preview.to_markdown(index=False) if not preview.empty else "(empty)"
            ),
            **published,
        }
    )


@dg.asset(
    key=ORDER_LIFECYCLE,
    deps=[ORDER_EVENTS],
    group_name="reporting",
    owners=[OWNER],
    kinds={"duckdb", "postgres"},
    tags={"layer": "reporting"},
    pool=WAREHOUSE_POOL,
    automation_condition=FOLLOW_UPSTREAM,
)
def order_lifecycle(
    warehouse: WarehouseResource,
    raw_log: RawLogResource,
    reporting_database: ReportingDatabaseResource,
) -> dg.MaterializeResult:
    """Per order: when it was created, paid, fulfilled, refunded or cancelled, and the hours between the
    steps; and when it counts as confirmed and its revenue as recognised, by the timing definitions
    (contracts/timing.yaml, named in the metadata; UTC, like the other times). Also published to
    PostgreSQL when REPORTING_DATABASE_URL is set (`published_to` says where)."""
    definitions = load_timing()
    with warehouse.warehouse().transaction() as con:
        timing_counts = register_order_timing(con, raw_log.log(), definitions)
        con.execute(ORDER_LIFECYCLE_SQL)
        rows, median_paid_to_fulfilled = con.execute(
            "SELECT count(*), median(hours_paid_to_fulfilled) FROM reporting.order_lifecycle"
        ).fetchone()
        columns = column_schema(con, ORDER_LIFECYCLE_TABLE, default_glossary())
        mart = (
            mart_from_duckdb(con, ORDER_LIFECYCLE_TABLE, ORDER_LIFECYCLE_TABLE_KEY)
            if reporting_database.target() is not None
            else None
        )
    published = reporting_database.publish(mart)  # after the DuckDB commit
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(rows),
            "dagster/column_schema": columns,
            "median_hours_paid_to_fulfilled": float(median_paid_to_fulfilled)
            if median_paid_to_fulfilled is not None
            else -1.0,
            **definitions.as_metadata(),
            **timing_counts,
            **published,
        }
    )


@dg.asset_check(
    asset=ORDERS_PER_DAY,
    name="orders_reconcile_with_core",
    pool=WAREHOUSE_POOL,
    automation_condition=CHECK_WITH_ITS_ASSET,
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
